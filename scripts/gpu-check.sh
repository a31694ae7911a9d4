#!/usr/bin/env bash
# One call on a GPU machine: build the CUDA kernel targets, run their tests, compute-sanitizer
# (memcheck, racecheck) on the small case, and the kernel benchmark. Logs and JSON go to $OUT
# (default ./gpu-check-out); the last lines printed are a short summary.
#   M2B_STEPS        which of "build test sanitize bench" to run (default: all four)
#   M2B_PREBUILT     a folder holding kernels_gpu_tests and bench_m2rnn_kernels built
#                    elsewhere (and any shared libraries they need); used when they load here
#   M2B_BENCH_REPS   benchmark repetitions per case, median reported (default 10)
#   M2B_BENCH_FILTER --benchmark_filter regex (default: all)
#   M2B_GIT_SHA      the commit measured, recorded in the benchmark context; pass it as a literal
#                    from the machine that holds the repository (a device copy's .git may be older
#                    than the working tree it builds)
# The test step runs every `gpu`-labelled test (ctest -L gpu): the kernels against the CPU oracle,
# the mixer conformance suite on the device (m2rnn through the cuda backend) and the linear ops.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu-env.sh"
out="${OUT:-$root/gpu-check-out}"
steps="${M2B_STEPS:-build test sanitize bench}"
mkdir -p "$out"
summary=()
note() { summary+=("$*"); echo "== $*"; }

{ nvidia-smi; nvcc --version; } >"$out/environment.txt" 2>&1
test_bin="$build/tests/kernels_gpu_tests"
bench_bin="$build/bench/bench_m2rnn_kernels"

loads() { [ -x "$1" ] && ! ldd "$1" | grep -q "not found"; }
if [ -n "${M2B_PREBUILT:-}" ]; then
  export LD_LIBRARY_PATH="$M2B_PREBUILT:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if loads "$M2B_PREBUILT/kernels_gpu_tests" && loads "$M2B_PREBUILT/bench_m2rnn_kernels"; then
    test_bin="$M2B_PREBUILT/kernels_gpu_tests"
    bench_bin="$M2B_PREBUILT/bench_m2rnn_kernels"
    steps="${steps//build/}"
    note "using prebuilt binaries from $M2B_PREBUILT"
  else
    note "prebuilt binaries do not load here; building"
    ldd "$M2B_PREBUILT/kernels_gpu_tests" >"$out/ldd.txt" 2>&1
  fi
fi

if [[ " $steps " == *" build "* ]]; then
  start=$(date +%s)
  m2b_gpu_configure "$out" || exit 1
  m2b_gpu_build "$out" $(m2b_gpu_test_targets) bench_m2rnn_kernels || exit 1
  note "build ok in $(( $(date +%s) - start )) s"
fi

if [[ " $steps " == *" test "* ]]; then
  "$test_bin" --order rand --rng-seed 1 --durations yes >"$out/test.log" 2>&1
  rc=$?
  note "kernel tests rc=$rc: $(grep -E 'test cases|All tests passed' "$out/test.log" | tail -1)"
  [ $rc -ne 0 ] && grep -B3 -A12 -m8 "FAILED" "$out/test.log" | head -120
  if [ -f "$build/CTestTestfile.cmake" ]; then
    (cd "$build" && ctest -L gpu --output-on-failure) >"$out/ctest_gpu.log" 2>&1
    rc=$?
    note "ctest -L gpu rc=$rc: $(grep -E 'tests passed' "$out/ctest_gpu.log" | tail -1)"
    [ $rc -ne 0 ] && grep -B2 -A25 -m6 "FAILED\|failed\|what()" "$out/ctest_gpu.log" | head -150
  fi
fi

if [[ " $steps " == *" sanitize "* ]]; then
  while read -r line; do note "$line"; done < <(m2b_gpu_sanitize "$out" "$test_bin")
fi

if [[ " $steps " == *" bench "* ]]; then
  "$bench_bin" --benchmark_repetitions="${M2B_BENCH_REPS:-10}" --benchmark_report_aggregates_only=true \
    --benchmark_filter="${M2B_BENCH_FILTER:-.}" --benchmark_context=git_sha="${M2B_GIT_SHA:-unknown}" \
    --benchmark_context=date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --benchmark_out="$out/bench.json" --benchmark_out_format=json >"$out/bench.log" 2>&1
  note "bench rc=$?"
  grep -E "_median" "$out/bench.log"
fi

printf '%s\n' "${summary[@]}"
