#!/usr/bin/env bash
# Benchmark: a second machine sharing a registry cache. Needs Debian's
# docker-registry (started here on 127.0.0.1). The build is bench-run.sh's
# 10 RUN steps after a COPY of a 50 MB generated tree (make-tree.py, scaled
# down), so both layer transfer and step reuse count.
#   cold:    empty cache dir, no registry (the reference)
#   export:  machine A, empty cache dir, --cache-to type=registry,mode=max
#   shared:  machine B, empty cache dir, --cache-from the same ref
# Compiled modules are warm for all (they are per machine, not per cache).
# Prints times, export/cold (the cost of pushing the cache) and shared/cold.
#
# Usage: reproducibility/bench-registry-cache.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
command -v docker-registry >/dev/null || { echo "needs docker-registry (apt-get install docker-registry)"; exit 1; }
cargo build --release --quiet
kiln="$PWD/target/release/kiln"
work="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg=$!
trap 'kill $reg 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

mkdir -p "$work/ctx"
python3 reproducibility/make-tree.py "$work/ctx/tree" 50 >/dev/null
eval "$(sed -n '/^steps=(/,/^)/p' reproducibility/bench-run.sh)"
{
  echo "FROM scratch"
  echo "COPY tree /tree"
  echo "WORKDIR /w"
  for s in "${steps[@]}"; do echo "RUN $s"; done
} > "$work/ctx/Dockerfile"

now() { date +%s.%N; }
# Compile the toolbox once, outside the timings.
KILN_WASM_CACHE="$work/modules" "$kiln" --cache-dir "$work/warmup" build --progress=quiet "$work/ctx" >/dev/null
for r in $(seq "$runs"); do
  ref="127.0.0.1:$port/bench/cache:$r"
  rm -rf "$work/a" "$work/b" "$work/c"
  tc=$(now)
  KILN_WASM_CACHE="$work/modules" "$kiln" --cache-dir "$work/c" build --progress=quiet \
    -o type=oci,dest="$work/c.tar" "$work/ctx" >/dev/null
  t0=$(now)
  KILN_WASM_CACHE="$work/modules" "$kiln" --cache-dir "$work/a" build --progress=quiet \
    --cache-to "type=registry,ref=$ref,mode=max" -o type=oci,dest="$work/a.tar" "$work/ctx" >/dev/null
  t1=$(now)
  KILN_WASM_CACHE="$work/modules" "$kiln" --cache-dir "$work/b" build --progress=quiet \
    --cache-from "$ref" -o type=oci,dest="$work/b.tar" "$work/ctx" >/dev/null
  t2=$(now)
  cold=$(echo "$t0 - $tc" | bc -l); export=$(echo "$t1 - $t0" | bc -l); shared=$(echo "$t2 - $t1" | bc -l)
  printf 'run %d: cold %.2fs  cold+export %.2fs  second machine from the registry cache %.2fs  export/cold %.2f  shared/cold %.2f\n' \
    "$r" "$cold" "$export" "$shared" "$(echo "$export / $cold" | bc -l)" "$(echo "$shared / $cold" | bc -l)"
  cmp -s "$work/a.tar" "$work/b.tar" || { echo "images differ"; exit 1; }
done
echo "both machines' images are identical"
