#!/usr/bin/env bash
# One call on a GPU machine: build the CUDA kernel targets, run their tests, compute-sanitizer
# (memcheck, racecheck) on the small case, the kernel benchmark, and where asked the authors'
# kernel beside it (the anchor) and Nsight Compute on the backward. bench.json and anchor.json go
# to $OUT (default ./gpu-check-out) with every log packed in logs.tar.gz (the device tool returns
# at most 8 files); the last lines printed are a short summary.
#   M2B_STEPS        which of "test sanitize bench anchor profile ablate" to run, after the
#                    programs are built (default: the first three). test: every `gpu` test
#                    program; ablate: each timing-only benchmark that scripts/ablate-backward.sh
#                    built, found beside bench_m2rnn_kernels, on the fused cases (its backward
#                    with phases left out), into ablation.tar.gz; anchor:
#                    the authors' kernel timed right after the benchmark, by
#                    .peers/xma_kernel_anchor.py where a .peers folder was carried
#                    (docs/gpu-kernels.md); profile: scripts/gpu-profile.sh on the fused
#                    backward at the three shapes
#   M2B_PREBUILT     a folder holding the programs built elsewhere (bench_m2rnn_kernels and the
#                    <concern>_gpu_tests, with any shared libraries they need), used where they
#                    all load here (scripts/gpu-env.sh, m2b_gpu_programs); else they are built
#   M2B_SANITIZE_RUNS  how many times each sanitizer runs (default 1): a race shows in some
#                    interleavings only
#   M2B_BENCH_REPS   benchmark repetitions per case, median reported (default 10)
#   M2B_BENCH_FILTER --benchmark_filter regex (default: all)
#   M2B_GIT_SHA      the commit measured, recorded in the benchmark context; pass it as a literal
#                    from the machine that holds the repository (a device copy's .git may be older
#                    than the working tree it builds)
#   M2B_BASELINE_BENCH  a second bench_m2rnn_kernels (a path: another commit's build, e.g. main
#                    beside a branch), run with the same flags right after the first, into
#                    bench_baseline.json: a before/after measured in one call on one GPU
#   M2B_BASELINE_SHA the commit of M2B_BASELINE_BENCH, for its benchmark context
#   M2B_ABLATE_SHA   the commit the ablate step's programs were built at (default: the ABLATE_SHA
#                    file that scripts/ablate-backward.sh leaves beside them, else M2B_GIT_SHA)
#   M2B_DEADLINE_S   seconds from the start within which every step ends (default 540): a step
#                    that would run past it less 30 s is stopped (scripts/gpu-env.sh, m2b_bounded),
#                    and whatever ends the script, the logs are packed and the summary printed.
#                    Keep it under the call's own limit (`timeout 570` around the script): a TERM
#                    from outside is handled only once the step running then has ended
# The test step runs every `gpu` test program (those behind ctest -L gpu): the kernels against the
# CPU oracle, the mixer conformance suite on the device (m2rnn through the cuda backend) and the
# linear ops.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu-env.sh"
out="${OUT:-$root/gpu-check-out}"
steps="${M2B_STEPS:-test sanitize bench}"
logs="$out/logs"
mkdir -p "$logs"
export M2B_DEADLINE=$(( $(date +%s) + ${M2B_DEADLINE_S:-540} ))
summary=()
note() { summary+=("$*"); echo "== $*"; }
# However the script ends (its end, a failed step, or a signal such as timeout's TERM): few files
# in $OUT (the device tool returns at most 8), and the summary last.
finish() {
  trap - TERM INT  # a second signal must not cut the packing short
  if [ -d "$out/ablation" ]; then tar -C "$out" -czf "$out/ablation.tar.gz" ablation && rm -rf "$out/ablation"; fi
  if [ -d "$logs" ]; then tar -C "$out" -czf "$out/logs.tar.gz" logs && rm -rf "$logs"; fi
  printf '%s\n' "${summary[@]}"
}
trap finish EXIT
trap 'note "stopped by TERM"; exit 143' TERM
trap 'note "stopped by INT"; exit 130' INT

{ nvidia-smi; nvcc --version; } >"$logs/environment.txt" 2>&1
# The programs, made ready first: built here unless M2B_PREBUILT holds ones that load.
tests=()
if [[ " $steps " == *" test "* ]]; then
  tests=($(m2b_gpu_test_programs "$logs")) || exit 1
  [ ${#tests[@]} -gt 0 ] || { note "test: no gpu test programs found"; exit 1; }
fi
# The benchmark only for the steps that run it (ablate finds its programs beside it): a test-only
# call need not build it.
programs=()
for step in bench ablate profile; do
  [[ " $steps " == *" $step "* ]] && { programs=(bench_m2rnn_kernels); break; }
done
[[ " $steps " == *" sanitize "* ]] && programs+=(kernels_gpu_tests)
for name in "${tests[@]}"; do [[ " ${programs[*]} " == *" $name "* ]] || programs+=("$name"); done
if [ ${#programs[@]} -gt 0 ]; then
  start=$(date +%s)
  m2b_gpu_programs "$logs" "${programs[@]}" || exit 1
  note "programs ready in $(( $(date +%s) - start )) s"
fi
bench_bin="${m2b_bin[bench_m2rnn_kernels]:-}"

if [[ " $steps " == *" test "* ]]; then
  while read -r line; do note "$line"; done < <(m2b_gpu_run_tests "$logs" "${tests[@]}")
fi

if [[ " $steps " == *" sanitize "* ]]; then
  for run in $(seq "${M2B_SANITIZE_RUNS:-1}"); do
    mkdir -p "$logs/sanitize_$run"
    while read -r line; do note "run $run: $line"; done < <(m2b_gpu_sanitize "$logs/sanitize_$run" "${m2b_bin[kernels_gpu_tests]}")
  done
fi

# bench NAME PROGRAM SHA: the kernel benchmark into $out/NAME.json, its log $logs/NAME.log.
bench() {
  m2b_bounded "$2" --benchmark_repetitions="${M2B_BENCH_REPS:-10}" --benchmark_report_aggregates_only=true \
    --benchmark_filter="${M2B_BENCH_FILTER:-.}" --benchmark_context=git_sha="${3:-unknown}" \
    --benchmark_context=date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --benchmark_out="$out/$1.json" --benchmark_out_format=json >"$logs/$1.log" 2>&1
  note "$1 rc=$?"
  grep -E "_median" "$logs/$1.log"
}
if [[ " $steps " == *" bench "* ]]; then
  bench bench "$bench_bin" "${M2B_GIT_SHA:-}"
  if [ -n "${M2B_BASELINE_BENCH:-}" ]; then
    bench bench_baseline "$M2B_BASELINE_BENCH" "${M2B_BASELINE_SHA:-}"
  fi
fi

# The anchor's own rows (its last line), with the versions it ran under, for
# plots/kernel_throughput.py --anchor.
if [[ " $steps " == *" anchor "* ]]; then
  if [ -f "$root/.peers/xma_kernel_anchor.py" ]; then
    PYTHONPATH="$root/.peers" m2b_bounded python3 "$root/.peers/xma_kernel_anchor.py" >"$logs/anchor.log" 2>&1
    note "anchor rc=$?"
    # Provenance: the commit whose benchmark it stands beside, and the digest of the timing
    # script (which fixes its inputs' seed).
    python3 - "$logs/anchor.log" "$out/anchor.json" "$root/.peers/xma_kernel_anchor.py" \
      "${M2B_GIT_SHA:-unknown}" <<'PY'
import datetime, hashlib, json, sys, torch, triton
rows = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
json.dump({"device_name": torch.cuda.get_device_name(), "torch": torch.__version__,
           "triton": triton.__version__,
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "beside_git_sha": sys.argv[4],
           "script_sha256": hashlib.sha256(open(sys.argv[3], "rb").read()).hexdigest(),
           "rows": rows}, open(sys.argv[2], "w"), indent=1)
PY
    cat "$out/anchor.json"
  else
    note "anchor skipped: no .peers/xma_kernel_anchor.py carried"
  fi
fi

if [[ " $steps " == *" ablate "* ]]; then
  mkdir -p "$out/ablation" "$logs/ablation"
  found=0
  ablate_dir="$(dirname "$bench_bin")"
  ablate_sha="${M2B_ABLATE_SHA:-$(cat "$ablate_dir/ABLATE_SHA" 2>/dev/null || echo "${M2B_GIT_SHA:-}")}"
  for prog in "$ablate_dir"/bench_m2rnn_kernels_skip*; do
    [ -x "$prog" ] || continue
    found=1
    M2B_BENCH_FILTER="/fused/" bench "ablation/${prog##*/}" "$prog" "$ablate_sha" >/dev/null
  done
  [ $found = 1 ] || note "ablate: no bench_m2rnn_kernels_skip<mask> beside $bench_bin (scripts/ablate-backward.sh)"
fi

if [[ " $steps " == *" profile "* ]]; then
  OUT="$logs/profile" M2B_PROFILE_CASES="${M2B_PROFILE_CASES:-m2rnn/lm400m/bf16/fused/fwd_bwd m2rnn/statetrack/fp32/fused/fwd_bwd m2rnn/wide/bf16/fused/fwd_bwd}" \
    "$root/scripts/gpu-profile.sh"
  note "profile rc=$?"
fi
