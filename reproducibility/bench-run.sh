#!/usr/bin/env bash
# Benchmark: a 10-step RUN build (WORKDIR /w, relative paths) (text processing with the toolbox: seq,
# sort, sed, tr, wc, sha256sum, mkdir/cp/ln/rm on a few hundred files).
#   cold:  fresh cache dir, fresh compiled-module cache (wasmtime compiles
#          the 10 MB toolbox once)
#   warm:  fresh cache dir (every step runs again), compiled modules
#          already on disk
#   hit:   the warm build again with its cache dir: every step is a step
#          cache hit (issue 4 asks for well under 300 ms)
# Reference, measured in the same run: the same 10 command lines run by the
# host's /bin/sh with GNU tools in a scratch directory. Prints times and the
# ratios kiln / reference.
#
# Usage: reproducibility/bench-run.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
cargo build --release --quiet
kiln="$PWD/target/release/kiln"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ctx"
steps=(
  'seq 1 20000 > nums.txt'
  'sort -rn nums.txt | head -n 100 > top.txt'
  'mkdir -p data && for i in $(seq 1 200); do echo "file $i" > data/f$i.txt; done'
  'cat data/*.txt | sed "s/file/entry/" | tr a-z A-Z > all.txt'
  'wc -l all.txt nums.txt > counts.txt'
  'sha256sum data/*.txt > sums.txt'
  'cp -r data data2 && ln -s data2 data-link && rm data2/f1*.txt'
  'seq 1 5000 | sed -n "s/0$/zero/p" | sort | uniq -c | sort -n > zeros.txt'
  'ls -la data2 > listing.txt && cut -c1-10 listing.txt | sort | uniq > modes.txt'
  'printf "%s\n" one two three | tac > rev.txt && tail -n 1 rev.txt'
)
{
  echo "FROM scratch"
  echo "WORKDIR /w"
  for s in "${steps[@]}"; do echo "RUN $s"; done
} > "$work/ctx/Dockerfile"

now() { date +%s.%N; }
ratio() { echo "$1 / $2" | bc -l; }
for r in $(seq "$runs"); do
  rm -rf "$work/cache" "$work/modules"
  t0=$(now)
  KILN_WASM_CACHE="$work/modules" "$kiln" --cache-dir "$work/cache" build --progress=quiet -o type=oci,dest="$work/cold.tar" "$work/ctx" >/dev/null
  t1=$(now)
  rm -rf "$work/cache"
  KILN_WASM_CACHE="$work/modules" "$kiln" --cache-dir "$work/cache" build --progress=quiet -o type=oci,dest="$work/warm.tar" "$work/ctx" >/dev/null
  t2=$(now)
  KILN_WASM_CACHE="$work/modules" "$kiln" --cache-dir "$work/cache" build --progress=quiet -o type=oci,dest="$work/hit.tar" "$work/ctx" >/dev/null
  t2h=$(now)
  rm -rf "$work/ref" && mkdir -p "$work/ref"
  (
    cd "$work/ref"
    for s in "${steps[@]}"; do
      LC_ALL=C /bin/sh -c "$s" >/dev/null
    done
  )
  t3=$(now)
  cold=$(echo "$t1 - $t0" | bc -l); warm=$(echo "$t2 - $t1" | bc -l)
  hit=$(echo "$t2h - $t2" | bc -l); ref=$(echo "$t3 - $t2h" | bc -l)
  printf 'run %d: cold %.2fs  warm %.2fs  all-hit %.3fs  host sh+GNU %.3fs  cold/ref %.1f  warm/ref %.1f  hit/ref %.2f\n' \
    "$r" "$cold" "$warm" "$hit" "$ref" "$(ratio "$cold" "$ref")" "$(ratio "$warm" "$ref")" "$(ratio "$hit" "$ref")"
done
cmp -s "$work/cold.tar" "$work/warm.tar" && cmp -s "$work/warm.tar" "$work/hit.tar" &&
  echo "cold, warm and all-hit images are identical"
