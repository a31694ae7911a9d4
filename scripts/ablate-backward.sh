#!/usr/bin/env bash
# Builds timing-only kernel benchmarks whose fused backward leaves phases out, one program per
# mask of BackwardPhase (kernels/cuda/m2rnn_fused_backward.cuh): 1 staging, 2 pass 1, 4 pass 2's
# forward, 8 the reverse recurrence, 16 dW, 32 the flush, 64 only the flush's atomic adds of
# shared-head gradients. A program's backward time less the full one's is what its phases add to
# the critical path, which instruction counts alone do not tell. Run them on a GPU with
# `M2B_STEPS="bench ablate" scripts/gpu-check.sh` (M2B_PREBUILT holding them and the ABLATE_SHA
# file written beside them); plots/backward_ablation.py writes the table. Their gradients are
# wrong: never use them for anything but that timing.
#   usage: scripts/ablate-backward.sh DEST [MASK ...]   (default masks: each phase alone, pass 1
#          with pass 2's forward (6), the per-round work (49), all but the reverse recurrence (55));
#          DEST's earlier skip programs are removed first
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
[ $# -ge 1 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
masks=("${@:2}")
[ ${#masks[@]} -gt 0 ] || masks=(1 2 4 8 16 32 64 6 49 55)
for m in "${masks[@]}"; do
  [[ "$m" =~ ^[1-9][0-9]*$ ]] && [ "$m" -lt 128 ] ||
    { echo "ablate-backward: mask '$m' is not a number in 1..127 (a sum of 1 2 4 8 16 32 64)" >&2; exit 2; }
done
dest="$(mkdir -p "$1" && cd "$1" && pwd)"
# The commit they are built at, which gpu-check.sh's ablate step records beside their timings. An
# earlier build's programs and record go first, so that none is stamped with another's commit.
sha="$(git -C "$M2BENCH_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
git -C "$M2BENCH_ROOT" diff --quiet HEAD -- 2>/dev/null || sha="$sha-dirty"
rm -f "$dest"/bench_m2rnn_kernels_skip* "$dest/ABLATE_SHA"
export M2BENCH_BUILD="$M2BENCH_ROOT/build-ablate"
"$M2BENCH_ROOT/scripts/build.sh" --target help >/dev/null  # configures the folder once
for m in "${masks[@]}"; do
  echo "== backward without phases $m"
  # One folder, reconfigured per mask: only the CUDA kernels and the benchmark rebuild.
  cmake -DM2BENCH_BACKWARD_SKIP="$m" "$M2BENCH_BUILD" >/dev/null
  cmake --build "$M2BENCH_BUILD" --target bench_m2rnn_kernels
  cp "$M2BENCH_BUILD/bench/bench_m2rnn_kernels" "$dest/bench_m2rnn_kernels_skip$m"
done
echo "$sha" >"$dest/ABLATE_SHA"
