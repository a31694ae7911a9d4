#!/usr/bin/env bash
# The test command: set up what is missing, build, and run the tests. Tests labelled `gpu` run
# only where a GPU is present.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$M2BENCH_ROOT/scripts/setup.sh"
"$M2BENCH_ROOT/scripts/build.sh"
labels=(-LE gpu)
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then labels=(); fi
cd "$M2BENCH_BUILD" && ctest --output-on-failure "${labels[@]}" "$@"
