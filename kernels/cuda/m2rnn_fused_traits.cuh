#pragma once
// The compile-time configuration of the fused M2RNN kernels (m2rnn_fused_forward.cuh,
// m2rnn_fused_backward.cuh): one thread block per (batch, head) chain, for the whole sequence.
//
// Work split. The block has NW = CS K / (16 MT) warps; warp w owns rows [16 MT r, 16 MT (r+1))
// of the K x V state, r = w / CS, and the columns [c V / CS, (c+1) V / CS), c = w % CS. Row i of
// H W needs only row i of H, so with CS = 1 the recurrence never crosses warps: the state lives
// in the warp's registers, in the fp32 accumulator layout of the tensor-core tiles (fragment
// [m][nt][4]: rows 16m + g (+8), cols 8nt + 2j (+1)). That layout is also the A-operand layout
// of the next step's product (bf16: pack pairs; tf32: permute k), so one step's result feeds the
// next step's mma with no data movement. The forward splits columns too (CS = 2) where a chain
// has a multiprocessor to itself (K V >= 4096; the wide shape: one warp per scheduler, which
// waited on its own dependent chain most cycles): twice the warps, each with half a step's
// products and tanh, and a warp pair swaps its halves of the product's A operand through shared
// memory every step. Only y (forward) and dv, df (backward) sum over rows of several warps:
// through shared memory, once per tile.
#include <type_traits>

namespace m2b::kernels::cuda::detail {

template <typename T_, int K_, int V_, int MT_, int P_, bool kExact_, int kMinBlocks_ = 1,
          int CS_ = 1, bool kRecomputeWarps_ = false>
struct Fused {
  using T = T_;
  static constexpr int K = K_, V = V_, MT = MT_, P = P_, CS = CS_;
  static constexpr bool kExact = kExact_;
  static constexpr bool kTf32 = !kExact && std::is_same_v<T, float>;
  static constexpr int NWR = K / (16 * MT);  // warps along rows
  static constexpr int NW = NWR * CS;
  static constexpr int kThreads = 32 * NW;  // one group of warps, holding the whole state
  // Backward: a second group of NW warps recomputes the states (pass 1, pass 2's forward) a tile
  // ahead of the first, which runs the reverse step, and adds dW a tile behind it (BackwardSmem).
  static constexpr bool kRecomputeWarps = kRecomputeWarps_;
  static constexpr int kBlockThreads = kThreads * (kRecomputeWarps ? 2 : 1);
  static constexpr int kMinBlocks = kMinBlocks_;  // __launch_bounds__: caps registers per thread
  static constexpr int NT = V / (8 * CS);         // n-tiles per warp
  static constexpr int kRows = 16 * MT;           // rows per warp
  // Shared-memory row stride of stored states and dA, in elements: 16 bytes of padding keep the
  // fragment-wise and ldmatrix accesses free of bank conflicts.
  static constexpr int LD = V + 16 / static_cast<int>(sizeof(T));
  // Tensor-core B operand (W or W^T): k-steps along V, 32-bit registers per lane; KSW of them
  // come from the warp's own columns.
  static constexpr int KS = kTf32 ? V / 8 : V / 16;
  static constexpr int KSW = KS / CS;
  // B fragments in registers: the backward holds W and W^T beside more live state; the forward,
  // W alone, takes up to 64 registers for it where registers are not capped (K 64, V 64, bf16:
  // one warp per scheduler, which stalled on the shared-memory loads of W every step).
  static constexpr bool kBInRegs = KS * NT * 2 <= 16;
  static constexpr bool kFwdBInRegs = KS * NT * 2 <= (kMinBlocks > 1 ? 16 : 64);
  // The forward's tile of steps (staged inputs, y partials summed once per tile; checkpoints at
  // its ends): 8, else 4 or 2, as many as fit a shared-memory budget, small where small states
  // mean many chains share a multiprocessor (16 chains of K V = 512 take 16 x 12 KiB), large where
  // a chain has the multiprocessor to itself (CS = 2: then the second y buffer fits). Per-tile
  // work (staging, barriers, the y sums) is amortised over the tile; unrolled, so more steps
  // would cost instruction-cache misses.
  static constexpr int kExchangeBytes = CS > 1 ? (2 * NW * MT * KSW * 32 * 16) : 0;  // Exchange
  static constexpr int kFwdFixedBytes = (kExact ? K * LD * 4 + V * V * 4 : 0) + kExchangeBytes;
  static constexpr int kYStepBytes = 8 * NWR * (V + 8) * 4;  // y partials of a step
  static constexpr int kFwdStepBytes =
      kYStepBytes + 2 * (2 * K + V) * static_cast<int>(sizeof(T));  // and two stages' q, k, v
  static constexpr int kFwdBudget = K * V <= 512 ? 12 * 1024 : CS > 1 ? 200 * 1024 : 96 * 1024;
  static constexpr int PF = kFwdFixedBytes + 8 * kFwdStepBytes <= kFwdBudget   ? 8
                            : kFwdFixedBytes + 4 * kFwdStepBytes <= kFwdBudget ? 4
                                                                               : 2;
  // A second buffer of y partials where it fits too: the next tile's steps then need not wait
  // for this tile's sums (a barrier per tile fewer).
  static constexpr int kYBuffers =
      kFwdFixedBytes + PF * (kFwdStepBytes + kYStepBytes) <= kFwdBudget ? 2 : 1;
  static_assert(K % (16 * MT) == 0 && V % 16 == 0, "K must be a multiple of 16 MT, V of 16");
  static_assert(CS == 1 || (CS == 2 && !kExact && KS % 2 == 0),
                "columns split in two, on tensor cores");
  static_assert(!kExact || std::is_same_v<T, float>, "the exact path takes fp32 inputs");
  static_assert(!kRecomputeWarps || (CS == 1 && !kExact),
                "recompute warps: whole rows, tensor cores");
};

}  // namespace m2b::kernels::cuda::detail
