#!/usr/bin/env bash
# One call on a GPU machine: build the kernel benchmark and profile chosen fused kernels with
# Nsight Compute (hardware counters, clocks left alone): per kernel the summary sections and the
# SASS lines where warps stall most. One text report per case goes to $OUT (default ./gpu-profile-out),
# with every SASS line's counts beside it (<case>.sass.csv.gz).
#   M2B_PROFILE_CASES  space-separated benchmark names (bench_m2rnn_kernels --benchmark_list_tests),
#                      default: lm400m and statetrack forward, lm400m and wide forward+backward, fused backend
#   M2B_PROFILE_TOP    how many SASS lines to list per kernel (default 40)
#   M2B_PREBUILT       a folder holding a bench_m2rnn_kernels built elsewhere, used where it loads
#                      here (scripts/gpu-env.sh, m2b_gpu_programs)
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/gpu-env.sh"
out="${OUT:-$root/gpu-profile-out}"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cases="${M2B_PROFILE_CASES:-m2rnn/lm400m/bf16/fused/fwd m2rnn/statetrack/fp32/fused/fwd m2rnn/lm400m/bf16/fused/fwd_bwd m2rnn/wide/bf16/fused/fwd_bwd}"
# The build's log stays out of $OUT, which two files per case fill (8 at most come back), unless
# the build fails.
m2b_gpu_programs "$tmp" bench_m2rnn_kernels || { cp "$tmp/build.log" "$out/" 2>/dev/null; exit 1; }
bench_bin="${m2b_bin[bench_m2rnn_kernels]}"
rc=0

for c in $cases; do
  tag="${c//\//_}"
  tag="${tag#m2rnn_}"
  # The benchmark warms up with one call, then times one: profile the timed call's backward kernel
  # for forward+backward cases, else its forward kernel.
  kernel=fused_forward_kernel
  [[ "$c" == */fwd_bwd ]] && kernel=fused_backward_kernel
  m2b_bounded ncu --clock-control none --set full --import-source no --launch-skip 1 --launch-count 1 \
      --kernel-name regex:"$kernel" -f -o "$out/$tag" \
      "$bench_bin" --benchmark_filter="^${c}/" >"$tmp/ncu.log" 2>&1 || rc=1
  {
    tail -5 "$tmp/ncu.log"
    ncu --import "$out/$tag.ncu-rep" --page details 2>&1
    ncu --import "$out/$tag.ncu-rep" --page source --csv --print-source sass >"$tmp/sass.csv" 2>&1
    head -c 3000 "$tmp/sass.csv"; echo
    python3 "$root/scripts/ncu_stalls.py" "$tmp/sass.csv" "${M2B_PROFILE_TOP:-40}" 2>&1
  } >"$out/$tag.txt"
  # Every SASS line's counts (the text keeps the top lines only), for attributing instructions
  # and stalls to the kernel's phases afterwards.
  gzip -c "$tmp/sass.csv" >"$out/$tag.sass.csv.gz"
  rm -f "$out/$tag.ncu-rep"
  echo "== $c"
  grep -E "Duration|Registers Per|Achieved Occupancy|Issue Slots Busy|Executed Ipc A|No Eligible" "$out/$tag.txt" | head -20
done
exit $rc
