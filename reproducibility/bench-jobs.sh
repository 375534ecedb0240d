#!/usr/bin/env bash
# Benchmark: parallel stages. Two independent CPU-bound stages (sorting and
# hashing with the toolbox) and a final stage that copies from both, built
# with `-j 1` and with the default (-j = number of cores), every step run
# (--no-cache; compiled modules warm). Prints both wall times and the ratio
# default / -j1 (issue 4: at most 0.72 on 2 cores), and checks that both
# builds give the same image.
#
# Usage: reproducibility/bench-jobs.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
cargo build --release --quiet
kiln="$PWD/target/release/kiln"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ctx"
stage() {
  echo "FROM scratch AS $1"
  echo "RUN seq $2 200000 | sort -r | sha256sum > /sum && seq 1 150000 | sort -n | tail -n 1 >> /sum"
  echo "RUN seq $2 120000 | sed 's/0/zero/g' | sort | uniq | wc -l > /count"
}
{
  stage left 1
  stage right 2
  echo "FROM scratch"
  echo "COPY --from=left /sum /left"
  echo "COPY --from=right /sum /right"
} > "$work/ctx/Dockerfile"

export KILN_WASM_CACHE="$work/modules"
build() { # jobs-flag... -> seconds
  local t0 t1
  t0=$(date +%s.%N)
  "$kiln" --cache-dir "$work/cache" build --no-cache --progress=quiet "$@" \
    -o type=oci,dest="$work/out$#.tar" "$work/ctx" >/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
build -j 1 >/dev/null # compile the toolbox once, outside the timings
echo "cores: $(nproc)"
for r in $(seq "$runs"); do
  serial=$(build -j 1)
  parallel=$(build)
  printf 'run %d: -j 1 %.2fs  default %.2fs  default/-j1 %.2f\n' \
    "$r" "$serial" "$parallel" "$(echo "$parallel / $serial" | bc -l)"
done
cmp -s "$work/out2.tar" "$work/out0.tar" && echo "-j 1 and default images are identical"
