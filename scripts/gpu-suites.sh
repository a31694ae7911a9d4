#!/usr/bin/env bash
# One call on a GPU machine: build m2bench with CUDA, run the GPU checks it is asked for, then
# train suites with several m2bench processes sharing the GPU (they split a suite's runs between
# them), stopping at a deadline so the call ends in time. Finished runs are kept; a run stopped
# at the deadline resumes from its checkpoint only on the same machine (see the packing below).
# $OUT gets few files (the device tool returns only a handful): results.tar.gz (the results
# root; unpack it into results/paper/ or wherever the suites' results live), logs.tar.gz, and
# the short logs of the build and checks.
#   M2B_SUITES      suite files, in order (default: experiments/paper/s3_length_generalisation.yaml)
#   M2B_PROCS       m2bench processes per suite (default 8); each uses 1 CPU thread
#   M2B_DEADLINE_S  seconds after the script starts at which training stops (default 540)
#   M2B_RESULTS     a results root to resume from (default: none: training starts afresh)
#   M2B_CHECKS      any of "test bench": ctest -L gpu, and bench_train_step on the GPU
#   M2BENCH_SOURCE_SHA  the commit this tree was exported from, where it has no .git (provenance)
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu-env.sh"
out="${OUT:-$root/gpu-suites-out}"
suites="${M2B_SUITES:-experiments/paper/s3_length_generalisation.yaml}"
procs="${M2B_PROCS:-8}"
deadline=$(( $(date +%s) + ${M2B_DEADLINE_S:-540} ))
checks="${M2B_CHECKS:-}"
work="$build/suites"  # results and per-process logs, packed into $OUT at the end
rm -rf "$work" && mkdir -p "$work/results" "$work/logs" "$out"
[ -n "${M2B_RESULTS:-}" ] && cp -r "$M2B_RESULTS"/. "$work/results/"
nvidia-smi >"$out/environment.txt" 2>&1

start=$(date +%s)
targets="m2bench"
[[ " $checks " == *" bench "* ]] && targets+=" bench_train_step"
m2b_gpu_configure "$out" || exit 1
[[ " $checks " == *" test "* ]] && targets+=" $(m2b_gpu_test_targets | tr '\n' ' ')"
m2b_gpu_build "$out" $targets || exit 1
echo "== build ok in $(( $(date +%s) - start )) s"
"$build/m2bench" version | tee "$out/version.txt"

if [[ " $checks " == *" test "* ]]; then
  (cd "$build" && ctest -L gpu --output-on-failure) >"$out/ctest_gpu.log" 2>&1
  echo "== ctest -L gpu rc=$?: $(grep -E 'tests passed' "$out/ctest_gpu.log" | tail -1)"
fi
if [[ " $checks " == *" bench "* ]]; then
  "$build/bench/bench_train_step" --benchmark_filter=cuda --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true --benchmark_out="$out/bench_train_step_cuda.json" \
    --benchmark_out_format=json >"$out/bench_train_step_cuda.log" 2>&1
  echo "== bench_train_step rc=$?"
  grep -E "_median" "$out/bench_train_step_cuda.log"
fi

for suite in $suites; do
  name=$(basename "$suite" .yaml)
  left=$(( deadline - $(date +%s) ))
  [ "$left" -le 30 ] && { echo "== $name: not started, deadline reached"; continue; }
  echo "== $name: $procs processes, at most $left s"
  pids=()
  for i in $(seq 1 "$procs"); do
    timeout --signal=INT --kill-after=20 "$left" "$build/m2bench" run "$suite" --threads 1 \
      --results "$work/results" >"$work/logs/${name}_$i.log" 2>&1 &
    pids+=($!)
    sleep 1  # staggered, so that the processes claim different runs
  done
  wait "${pids[@]}"
  "$build/m2bench" plan "$suite" --results "$work/results" | tail -1
  grep -h "failed:" "$work/logs/${name}"_*.log | sort | uniq -c | head -5
done
# Without checkpoints: a stopped run's checkpoint cannot come back within the device's file
# limits, so what a sitting leaves unfinished is trained again from the start at the next one.
tar -czf "$out/results.tar.gz" --exclude='checkpoint*' -C "$work/results" .
tar -czf "$out/logs.tar.gz" -C "$work/logs" .
echo "== done in $(( $(date +%s) - start )) s"
