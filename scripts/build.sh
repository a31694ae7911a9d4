#!/usr/bin/env bash
# Configures (once) and builds m2bench, its tests and benchmarks into build/ (or $M2BENCH_BUILD).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
py="$(m2bench_find_python)" || { echo "build: no torch==$M2BENCH_TORCH_VERSION found; run scripts/setup.sh" >&2; exit 1; }
if [ ! -f "$M2BENCH_BUILD/CMakeCache.txt" ]; then
  mkdir -p "$M2BENCH_BUILD"
  cmake -S "$M2BENCH_ROOT" -B "$M2BENCH_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH="$(m2bench_torch_cmake_prefix "$py")" -DM2BENCH_PYTHON="$py" \
        ${M2BENCH_CMAKE_ARGS:-} >"$M2BENCH_BUILD/configure.log" 2>&1 \
    || { cat "$M2BENCH_BUILD/configure.log" >&2; exit 1; }
fi
cmake --build "$M2BENCH_BUILD" "$@"
