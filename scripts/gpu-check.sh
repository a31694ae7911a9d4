#!/usr/bin/env bash
# One call on a GPU machine: build the CUDA kernel targets, run their tests, compute-sanitizer
# (memcheck, racecheck) on the small case, the kernel benchmark, and where asked the authors'
# kernel beside it (the anchor) and Nsight Compute on the backward. bench.json and anchor.json go
# to $OUT (default ./gpu-check-out) with every log packed in logs.tar.gz (the device tool returns
# at most 8 files); the last lines printed are a short summary.
#   M2B_STEPS        which of "build test sanitize bench anchor profile" to run (default: the first
#                    four). anchor: the authors' kernel timed right after the benchmark, by
#                    .peers/xma_kernel_anchor.py where a .peers folder was carried
#                    (docs/gpu-kernels.md); profile: scripts/gpu-profile.sh on the fused
#                    backward at the three shapes
#   M2B_PREBUILT     a folder holding kernels_gpu_tests and bench_m2rnn_kernels built
#                    elsewhere (and any shared libraries they need); used when they load here.
#                    Its other <concern>_gpu_tests programs run in the test step too.
#   M2B_SANITIZE_RUNS  how many times each sanitizer runs (default 1): a race shows in some
#                    interleavings only
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
logs="$out/logs"
mkdir -p "$logs"
summary=()
note() { summary+=("$*"); echo "== $*"; }

{ nvidia-smi; nvcc --version; } >"$logs/environment.txt" 2>&1
test_bin="$build/tests/kernels_gpu_tests"
bench_bin="$build/bench/bench_m2rnn_kernels"

loads() { [ -x "$1" ] && ! ldd "$1" | grep -q "not found"; }
if [ -n "${M2B_PREBUILT:-}" ]; then
  export LD_LIBRARY_PATH="$M2B_PREBUILT:$torch_prefix/../../lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if loads "$M2B_PREBUILT/kernels_gpu_tests" && loads "$M2B_PREBUILT/bench_m2rnn_kernels"; then
    test_bin="$M2B_PREBUILT/kernels_gpu_tests"
    bench_bin="$M2B_PREBUILT/bench_m2rnn_kernels"
    steps="${steps//build/}"
    note "using prebuilt binaries from $M2B_PREBUILT"
  else
    # Build them here, whether or not the steps asked for a build: the other steps need them.
    note "prebuilt binaries do not load here ($(ldd "$M2B_PREBUILT/kernels_gpu_tests" \
      "$M2B_PREBUILT/bench_m2rnn_kernels" 2>&1 | grep -o '[^[:space:]]* => not found' | sort -u |
      tr '\n' ' ')); building"
    [[ " $steps " == *" build "* ]] || steps="build $steps"
  fi
fi

if [[ " $steps " == *" build "* ]]; then
  start=$(date +%s)
  m2b_gpu_configure "$logs" || exit 1
  m2b_gpu_build "$logs" $(m2b_gpu_test_targets) bench_m2rnn_kernels || exit 1
  note "build ok in $(( $(date +%s) - start )) s"
fi

if [[ " $steps " == *" test "* ]]; then
  tests=("$test_bin")
  [ "$test_bin" = "${M2B_PREBUILT:-}/kernels_gpu_tests" ] &&
    tests=($(ls "$M2B_PREBUILT"/*_gpu_tests))
  for t in "${tests[@]}"; do
    name="$(basename "$t")"
    "$t" --order rand --rng-seed 1 --durations yes >"$logs/$name.log" 2>&1
    rc=$?
    note "$name rc=$rc: $(grep -E 'test cases|All tests passed' "$logs/$name.log" | tail -1)"
    [ $rc -ne 0 ] && grep -B3 -A12 -m8 "FAILED" "$logs/$name.log" | head -120
  done
  if [ "$test_bin" = "$build/tests/kernels_gpu_tests" ] && [ -f "$build/CTestTestfile.cmake" ]; then
    (cd "$build" && ctest -L gpu --output-on-failure) >"$logs/ctest_gpu.log" 2>&1
    rc=$?
    note "ctest -L gpu rc=$rc: $(grep -E 'tests passed' "$logs/ctest_gpu.log" | tail -1)"
    [ $rc -ne 0 ] && grep -B2 -A25 -m6 "FAILED\|failed\|what()" "$logs/ctest_gpu.log" | head -150
  fi
fi

if [[ " $steps " == *" sanitize "* ]]; then
  for run in $(seq "${M2B_SANITIZE_RUNS:-1}"); do
    mkdir -p "$logs/sanitize_$run"
    while read -r line; do note "run $run: $line"; done < <(m2b_gpu_sanitize "$logs/sanitize_$run" "$test_bin")
  done
fi

if [[ " $steps " == *" bench "* ]]; then
  "$bench_bin" --benchmark_repetitions="${M2B_BENCH_REPS:-10}" --benchmark_report_aggregates_only=true \
    --benchmark_filter="${M2B_BENCH_FILTER:-.}" --benchmark_context=git_sha="${M2B_GIT_SHA:-unknown}" \
    --benchmark_context=date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --benchmark_out="$out/bench.json" --benchmark_out_format=json >"$logs/bench.log" 2>&1
  note "bench rc=$?"
  grep -E "_median" "$logs/bench.log"
fi

# The anchor's own rows (its last line), with the versions it ran under, for
# plots/kernel_throughput.py --anchor.
if [[ " $steps " == *" anchor "* ]]; then
  if [ -f "$root/.peers/xma_kernel_anchor.py" ]; then
    PYTHONPATH="$root/.peers" python3 "$root/.peers/xma_kernel_anchor.py" >"$logs/anchor.log" 2>&1
    note "anchor rc=$?"
    python3 - "$logs/anchor.log" "$out/anchor.json" <<'PY'
import json, sys, datetime, torch, triton
rows = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
json.dump({"device_name": torch.cuda.get_device_name(), "torch": torch.__version__,
           "triton": triton.__version__,
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "rows": rows}, open(sys.argv[2], "w"), indent=1)
PY
    cat "$out/anchor.json"
  else
    note "anchor skipped: no .peers/xma_kernel_anchor.py carried"
  fi
fi

if [[ " $steps " == *" profile "* ]]; then
  M2B_BENCH_BIN="$bench_bin" OUT="$logs/profile" M2B_PROFILE_CASES="${M2B_PROFILE_CASES:-m2rnn/lm400m/bf16/fused/fwd_bwd m2rnn/statetrack/fp32/fused/fwd_bwd m2rnn/wide/bf16/fused/fwd_bwd}" \
    "$root/scripts/gpu-profile.sh"
  note "profile rc=$?"
fi

tar -C "$out" -czf "$out/logs.tar.gz" logs && rm -rf "$logs"
printf '%s\n' "${summary[@]}"
