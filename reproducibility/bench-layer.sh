#!/usr/bin/env bash
# Cold COPY benchmark: kiln's layer writer vs
#   tar --sort=name -cf - DIR | gzip -n -6 | sha256sum
# on a generated, deterministic ~200 MB mixed tree. Prints both times and the
# ratio (the issue asks for kiln <= 0.5x the baseline on 2 cores).
# Options: --runs N (median of N, default 3), --levels 1,2,4 (deflate levels
# to compare; default kiln's LEVEL), --dir D (reuse/generate the tree in D).
#
# Measured once (2 cores shared with other jobs, so noisy), level 3:
#   tree 220.5 MB; baseline 21.55 s; kiln 6.55 s; ratio 0.30 (median of 3)
#   an earlier, less loaded run: baseline 13.95 s, kiln 2.76 s, ratio 0.20
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench bench_layer -- "$@"
