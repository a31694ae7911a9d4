#!/usr/bin/env bash
# One call on a GPU machine: build m2bench with CUDA, run the GPU checks it is asked for, then
# train suites with several m2bench worker processes per GPU (they split a suite's runs between
# them), stopping at a deadline so the call ends in time. Finished runs are kept; a run stopped
# at the deadline resumes from its checkpoint at the next call on the same (still warm) machine,
# whose results root is kept, and elsewhere when its checkpoint came back (see the packing below).
# $OUT gets few files (the device tool returns at most 8): results.tar.gz (the results
# root; unpack it into results/paper/ or wherever the suites' results live), the stopped runs'
# checkpoints in parts (checkpoints.tar.gz.N, see the packing below), logs.tar.gz, and the short
# logs of the build and checks.
#   M2B_SUITES      suite files, in order (default: experiments/paper/s3_length_generalisation.yaml)
#   M2B_PROCS       m2bench worker processes per GPU (`m2bench run --gpus all --per-gpu`,
#                   default 8); each uses 1 CPU thread. One count per suite ("9 7") trains the
#                   suites at once, each with its own count, so that a suite of few long runs
#                   does not leave the GPU's other slots idle until it ends
#   M2B_DEADLINE_S  seconds after the script starts at which training stops (default 540)
#   M2B_ONLY        run ids (or unique prefixes), space-separated, to train instead of whole
#                   suites (`m2bench run --only`); give it with one suite, since every id must
#                   be in the suite
#   M2B_RESULTS     results roots to resume from, space-separated (say, the committed results
#                   and a folder of stopped runs' checkpoints kept apart from them), copied in
#                   that order into the machine's own (which a warm machine keeps from its
#                   previous call), never over a file already there. A root may be a tar
#                   archive of one (`tar -cJf resume.tar.xz -C .resume .`): stopped runs'
#                   checkpoints, compressed, are what fits beside the tree in a device call's carry
#   M2B_CHECKS      any of "test sanitize bench peer": the `gpu` tests, compute-sanitizer on the
#                   kernel tests' [sanitize] cases, bench_train_step on the GPU, and
#                   the PyTorch peer of bench_train_step (.peers/peer_train_step.py, where a
#                   .peers folder of peer tools was carried; see results/h200/README.md)
#                   "profile": a Kineto trace of each eager bench_train_step case matching
#                   M2B_PROFILE_FILTER (default cuda/tf32/eager), summed by kernel name
#   M2B_BENCH_FILTER  which bench_train_step cases "bench" runs (default: cuda, all of them)
#   M2B_PREBUILT    a folder of programs built elsewhere (scripts/gpu-env.sh, m2b_gpu_programs)
#   M2B_GPU_TESTS   a regex choosing among the `gpu` test programs (default: all)
#   M2B_MPS         1 to start CUDA MPS before the suites, so that the processes' kernels share
#                   the GPU at once instead of taking turns (it is stopped at the end)
#   M2B_GRAPHS      0 to train with `--no-cuda-graphs`
#   M2BENCH_SOURCE_SHA  the commit this tree was exported from, where it has no .git (provenance)
#   M2B_CHECKPOINT_PARTS  how many files of 15 MiB the stopped runs' checkpoints may take
#                   (default 4; fewer where the checks' files leave less room of the 8)
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu-env.sh"
out="${OUT:-$root/gpu-suites-out}"
suites="${M2B_SUITES:-experiments/paper/s3_length_generalisation.yaml}"
procs="${M2B_PROCS:-8}"
deadline=$(( $(date +%s) + ${M2B_DEADLINE_S:-540} ))
export M2B_DEADLINE="$deadline"  # the checks' programs end before it too (m2b_bounded)
checks="${M2B_CHECKS:-}"
read -ra suite_list <<<"$suites"
read -ra procs_list <<<"$procs"
if [ ${#procs_list[@]} -ne 1 ] && [ ${#procs_list[@]} -ne ${#suite_list[@]} ]; then
  echo "gpu-suites: M2B_PROCS has ${#procs_list[@]} counts for ${#suite_list[@]} suites; give one count, or one per suite" >&2
  exit 2
fi
work="$build/suites"  # results and per-process logs, packed into $OUT at the end
# A suite's log is started afresh when it runs; others stay, so that every call of this script on
# a warm machine (or several in one device call) comes back in logs.tar.gz.
mkdir -p "$work/results" "$work/logs" "$out"
for from in ${M2B_RESULTS:-}; do
  if [ -d "$from" ]; then
    cp -r --update=none "$from"/. "$work/results/"
  elif [ -f "$from" ]; then
    # --skip-old-files: as cp's --update=none, a run the machine already carried on stays newer.
    tar -xf "$from" --skip-old-files -C "$work/results/" || exit 1
  else
    echo "gpu-suites: M2B_RESULTS names $from, which is neither a results folder nor a tar archive of one" >&2
    exit 2
  fi
done
nvidia-smi -L; nvidia-smi --query-gpu=driver_version,memory.total --format=csv,noheader

start=$(date +%s)
programs=(m2bench)
[[ " $checks " == *" bench "* || " $checks " == *" profile "* ]] && programs+=(bench_train_step)
tests=()
if [[ " $checks " == *" test "* ]]; then
  tests=($(m2b_gpu_test_programs "$out")) || exit 1
  tests=($(printf '%s\n' "${tests[@]}" | grep -E "${M2B_GPU_TESTS:-.}"))
  programs+=("${tests[@]}")
fi
# The sanitizers run the kernel tests, whichever test programs M2B_GPU_TESTS chose.
[[ " $checks " == *" sanitize "* && " ${programs[*]} " != *" kernels_gpu_tests "* ]] &&
  programs+=(kernels_gpu_tests)
m2b_gpu_programs "$out" "${programs[@]}" || exit 1
echo "== programs ready in $(( $(date +%s) - start )) s"
m2bench="${m2b_bin[m2bench]}"
"$m2bench" version

if [[ " $checks " == *" test "* ]]; then
  m2b_gpu_run_tests "$work/logs" "${tests[@]}"
  echo "== gpu tests rc=$? (logs in logs.tar.gz)"
fi
if [[ " $checks " == *" sanitize "* ]]; then
  m2b_gpu_sanitize "$out" "${m2b_bin[kernels_gpu_tests]}"
  echo "== sanitize rc=$?"
fi
if [[ " $checks " == *" bench "* ]]; then
  m2b_bounded "${m2b_bin[bench_train_step]}" --benchmark_filter="${M2B_BENCH_FILTER:-cuda}" --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true --benchmark_out="$out/bench_train_step_cuda.json" \
    --benchmark_out_format=json >"$out/bench_train_step_cuda.log" 2>&1
  echo "== bench_train_step rc=$?"
  grep -E "_median" "$out/bench_train_step_cuda.log" | awk '{print $1, $2, $3}'
fi
if [[ " $checks " == *" profile "* ]]; then
  # Afresh: a warm machine keeps an earlier call's traces, which the summary would add in.
  rm -rf "$work/profiles" && mkdir -p "$work/profiles"
  M2BENCH_PROFILE_DIR="$work/profiles" m2b_bounded "${m2b_bin[bench_train_step]}" \
    --benchmark_filter="${M2B_PROFILE_FILTER:-cuda/tf32/eager}" >"$out/profile_bench.log" 2>&1
  echo "== profile rc=$?"
  python3 "$root/scripts/profile_summary.py" "$work/profiles"/*.json | tee "$out/profile_summary.txt"
fi
if [[ " $checks " == *" peer "* && -f "$root/.peers/peer_train_step.py" ]]; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site "$root"/.peers/wheels/*.whl
  PYTHONPATH="$root/.peers:/tmp/site" PYTHONUNBUFFERED=1 timeout 400 python3 \
    "$root/.peers/peer_train_step.py" --compile >"$out/peer_train_step.log" 2>&1
  echo "== peer_train_step rc=$?"
  grep "^{" "$out/peer_train_step.log"
fi

if [ "${M2B_MPS:-0}" = 1 ]; then
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/m2b-mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/m2b-mps-log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  if nvidia-cuda-mps-control -d; then
    trap 'echo quit | nvidia-cuda-mps-control' EXIT
    echo "== MPS started"
  else
    echo "== MPS did not start; the processes take turns on the GPU"
  fi
fi
graphs_flag=()
[ "${M2B_GRAPHS:-1}" = 0 ] && graphs_flag=(--no-cuda-graphs)
only_flags=()
for id in ${M2B_ONLY:-}; do only_flags+=(--only "$id"); done
# train_suite SUITE PROCS: one worker process per slot; at the deadline SIGINT makes each write
# a checkpoint and stop.
train_suite() {
  local suite="$1" procs="$2" name left suite_start
  name=$(basename "$suite" .yaml)
  left=$(( deadline - $(date +%s) ))
  [ "$left" -le 30 ] && { echo "== $name: not started, deadline reached"; return; }
  echo "== $name: $procs processes per GPU, at most $left s"
  suite_start=$(date +%s)
  timeout --signal=INT --kill-after=20 "$left" "$m2bench" run "$suite" --gpus all \
    --per-gpu "$procs" --threads 1 --results "$work/results" "${graphs_flag[@]}" \
    "${only_flags[@]}" \
    >"$work/logs/$name.log" 2>&1
  echo "== $name: $(( $(date +%s) - suite_start )) s"
  "$m2bench" plan "$suite" --results "$work/results" | tail -1
  grep -h "failed:" "$work/logs/$name.log" | sed 's/^\[gpu [^]]*\] //' | sort | uniq -c | head -5
}
if [ ${#procs_list[@]} -eq 1 ]; then
  for suite in "${suite_list[@]}"; do train_suite "$suite" "${procs_list[0]}"; done
else
  for i in "${!suite_list[@]}"; do train_suite "${suite_list[$i]}" "${procs_list[$i]}" & done
  wait
fi
# The results without checkpoints, and beside them the checkpoints of the runs that the deadline
# stopped (no summary.json), so that the next sitting resumes them instead of training them again
# from the start: checkpoints.tar.gz, split into parts of 15 MiB where it is larger (the device
# tool returns files of 16 MiB at most, 8 files and 64 MiB in all), at most M2B_CHECKPOINT_PARTS
# of them (default 4). Rejoin them into the results root with
#   cat checkpoints.tar.gz.* | tar -xz -C results/paper
tar -czf "$out/results.tar.gz" --exclude='checkpoint*' -C "$work/results" .
stopped=()
while IFS= read -r ck; do
  [ -f "$(dirname "$work/results/$ck")/summary.json" ] || stopped+=("$ck")
done < <(cd "$work/results" && find . -name 'checkpoint*' -type f | sort)
if [ ${#stopped[@]} -gt 0 ]; then
  # No more parts than the files $OUT has room for, logs.tar.gz still to come.
  room=$(( 8 - $(ls "$out" | wc -l) - 1 ))
  [ "$room" -ge 0 ] || room=0
  limit=${M2B_CHECKPOINT_PARTS:-4}
  [ "$room" -lt "$limit" ] && limit=$room
  tar -czf - -C "$work/results" "${stopped[@]}" | split -b 15M -d -a 1 - "$out/checkpoints.tar.gz."
  parts=$(ls "$out"/checkpoints.tar.gz.* | wc -l)
  if [ "$parts" -gt "$limit" ]; then
    rm -f "$out"/checkpoints.tar.gz.*
    echo "== checkpoints of ${#stopped[@]} stopped runs left out: $parts parts of 15 MiB, room for $limit"
  else
    echo "== checkpoints of ${#stopped[@]} stopped runs in $parts part(s): checkpoints.tar.gz.*"
  fi
fi
tar -czf "$out/logs.tar.gz" -C "$work/logs" .
echo "== done in $(( $(date +%s) - start )) s"
