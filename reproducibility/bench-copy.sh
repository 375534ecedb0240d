#!/usr/bin/env bash
# Benchmark: a cold `kiln build` whose only step is COPY of a ~200 MB mixed
# tree, against `tar --sort=name -cf - | gzip -n -6 | sha256sum` on the same
# tree, measured in the same run. Prints both times and the ratio
# (kiln / reference; the foundation issue's target is <= 0.5 on 2 cores).
#
# Usage: reproducibility/bench-copy.sh [SCALE_MB] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-200}"
runs="${2:-3}"
cargo build --release --quiet
kiln="$PWD/target/release/kiln"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 reproducibility/make-tree.py "$work/ctx/tree" "$scale" >/dev/null
printf 'FROM scratch\nCOPY tree /tree\n' > "$work/ctx/Dockerfile"
du -sh "$work/ctx/tree"

now() { date +%s.%N; }
best_kiln=999999
best_ref=999999
for r in $(seq "$runs"); do
  # Warm the page cache equally for both, then time each cold (fresh store).
  cat $(find "$work/ctx/tree" -type f) >/dev/null
  rm -rf "$work/cache"
  t0=$(now)
  "$kiln" --cache-dir "$work/cache" build --progress=quiet "$work/ctx" >/dev/null
  t1=$(now)
  (cd "$work/ctx" && tar --sort=name -cf - tree | gzip -n -6 | sha256sum >/dev/null)
  t2=$(now)
  k=$(echo "$t1 - $t0" | bc -l)
  g=$(echo "$t2 - $t1" | bc -l)
  printf 'run %d: kiln %.2fs  tar|gzip -6|sha256sum %.2fs  ratio %.2f\n' "$r" "$k" "$g" "$(echo "$k / $g" | bc -l)"
  best_kiln=$(echo "if ($k < $best_kiln) $k else $best_kiln" | bc -l)
  best_ref=$(echo "if ($g < $best_ref) $g else $best_ref" | bc -l)
done
printf 'best: kiln %.2fs  reference %.2fs  ratio %.2f (target <= 0.5)\n' "$best_kiln" "$best_ref" "$(echo "$best_kiln / $best_ref" | bc -l)"
