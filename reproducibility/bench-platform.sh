#!/usr/bin/env bash
# Benchmark: "a foreign-architecture build runs at native speed". The
# 10-step RUN build of bench-run.sh (examples of real toolbox work), with
# the step cache off and compiled modules warm, built for
#   amd64:  --platform linux/amd64 (this machine's architecture, the reference)
#   arm64:  --platform linux/arm64 (foreign: no emulation, the same WebAssembly)
#   both:   --platform linux/amd64,linux/arm64 (an image index; the two
#           platforms build at once, each on its share of -j)
# Prints times and the ratios arm64/amd64 (expected ~1) and both/amd64
# (2 would be no better than one after the other).
#
# Usage: reproducibility/bench-platform.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
cargo build --release --quiet
kiln="$PWD/target/release/kiln"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ctx"
# The steps of bench-run.sh.
eval "$(sed -n '/^steps=(/,/^)/p' reproducibility/bench-run.sh)"
{
  echo "FROM scratch"
  echo "WORKDIR /w"
  for s in "${steps[@]}"; do echo "RUN $s"; done
} > "$work/ctx/Dockerfile"

now() { date +%s.%N; }
build() { # PLATFORMS
  KILN_WASM_CACHE="$work/modules" "$kiln" --cache-dir "$work/cache" build --progress=quiet \
    --no-cache --platform "$1" -o type=oci,dest="$work/out.tar" "$work/ctx" >/dev/null
}
build linux/amd64 # compile the toolbox once, outside the timings
for r in $(seq "$runs"); do
  t0=$(now); build linux/amd64
  t1=$(now); build linux/arm64
  t2=$(now); build linux/amd64,linux/arm64
  t3=$(now)
  amd=$(echo "$t1 - $t0" | bc -l); arm=$(echo "$t2 - $t1" | bc -l); both=$(echo "$t3 - $t2" | bc -l)
  printf 'run %d: amd64 %.3fs  arm64 %.3fs  both %.3fs  arm64/amd64 %.2f  both/amd64 %.2f\n' \
    "$r" "$amd" "$arm" "$both" "$(echo "$arm / $amd" | bc -l)" "$(echo "$both / $amd" | bc -l)"
done
