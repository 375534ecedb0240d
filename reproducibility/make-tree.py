#!/usr/bin/env python3
"""Writes a deterministic ~200 MB "mixed" tree for the layer benchmarks:
many small source-like text files, medium binaries, and a few large
semi-compressible files. Usage: make-tree.py DIR [SCALE_MB]"""
import os
import random
import sys

dest = sys.argv[1]
scale = int(sys.argv[2]) if len(sys.argv) > 2 else 200
rng = random.Random(20261129)
words = [("".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(2, 10)))) for _ in range(3000)]

def text(size):
    out, n = [], 0
    while n < size:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) + "\n"
        out.append(line)
        n += len(line)
    return "".join(out)[:size].encode()

def semi_random(size):
    # Half random bytes, half repeated text: compresses about 2:1.
    chunk = 64 * 1024
    parts = []
    for i in range(0, size, chunk):
        parts.append(rng.randbytes(chunk // 2) + text(chunk // 2))
    return b"".join(parts)[:size]

budget = scale * 1024 * 1024
small_total = budget * 30 // 100
medium_total = budget * 30 // 100
large_total = budget - small_total - medium_total

written = 0
i = 0
while written < small_total:
    d = os.path.join(dest, "src", f"pkg{i // 100:03d}")
    os.makedirs(d, exist_ok=True)
    data = text(rng.randint(200, 8000))
    with open(os.path.join(d, f"file{i:05d}.txt"), "wb") as f:
        f.write(data)
    written += len(data)
    i += 1

written = 0
j = 0
while written < medium_total:
    d = os.path.join(dest, "assets", f"group{j // 20:02d}")
    os.makedirs(d, exist_ok=True)
    size = rng.randint(100_000, 600_000)
    data = rng.randbytes(size) if j % 3 == 0 else semi_random(size)
    with open(os.path.join(d, f"asset{j:04d}.bin"), "wb") as f:
        f.write(data)
    written += size
    j += 1

os.makedirs(os.path.join(dest, "data"), exist_ok=True)
for k in range(4):
    with open(os.path.join(dest, "data", f"large{k}.dat"), "wb") as f:
        f.write(semi_random(large_total // 4))
print(f"{dest}: {i} small, {j} medium, 4 large files")
