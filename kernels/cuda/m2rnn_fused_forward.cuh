#pragma once
// The fused forward kernel: one thread block per chain carries its state through the whole
// sequence, tile by tile of staged inputs. It writes each step's y as per-lane partial sums and
// adds them up once per tile, and saves the state every C steps (the backward's checkpoints).
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cuda/m2rnn_fused_fragments.cuh"
#include "kernels/cuda/m2rnn_fused_products.cuh"
#include "kernels/cuda/m2rnn_fused_staging.cuh"
#include "kernels/cuda/m2rnn_fused_step.cuh"
#include "kernels/cuda/recurrence_args.cuh"

namespace m2b::kernels::cuda::detail {

template <class C>
struct ForwardSmem {
  using St = Stage<C, false, C::PF, std::is_same_v<typename C::T, __nv_bfloat16>>;
  static constexpr int kYRows = 8 * C::NWR, kYLd = C::V + 8;  // y partials of a step: row (r, g)
  static constexpr int kYStep = kYRows * kYLd;
  static constexpr int oStage = 0;                    // 2 Stage buffers
  static constexpr int oY = oStage + 2 * St::kBytes;  // float [kYBuffers][PF][kYRows][kYLd]
  static constexpr int oRows = oY + C::kYBuffers * C::PF * kYStep * 4;   // T [K][LD], exact only
  static constexpr int oB = oRows + (C::kExact ? C::K * C::LD * 4 : 0);  // BOperand
  static constexpr int oX = oB + BOperand<C, C::kFwdBInRegs>::smem_bytes();  // Exchange
  static constexpr int kBytes = oX + C::kExchangeBytes;
};

// y of the tile from step t0 (y_step apart in y): its partials `part` summed over rows, one
// step-column element per thread and slice.
template <class C>
__device__ __forceinline__ void sum_y(typename C::T* y, int64_t y_step, int64_t t0, int steps,
                                      const float* part, int slice, const Lane& l) {
  using L = ForwardSmem<C>;
  const int e = l.tid + slice * C::kBlockThreads;
  if (e >= steps * C::V) return;
  const int s = e / C::V, c = e % C::V;
  const float* p = part + s * L::kYStep + c;
  float sum = 0.f;
#pragma unroll
  for (int r = 0; r < L::kYRows; ++r) sum += p[r * L::kYLd];
  y[(t0 + s) * y_step + c] = from_float<typename C::T>(sum);
}

template <class C>
__global__ void __launch_bounds__(C::kBlockThreads, C::kMinBlocks)
    fused_forward_kernel(const RecurrenceArgs<typename C::T> a) {
  using T = typename C::T;
  using L = ForwardSmem<C>;
  using St = typename L::St;
  constexpr int PF = C::PF;
  extern __shared__ __align__(16) unsigned char smem[];
  unsigned char* stage = smem + L::oStage;
  T* rows = C::kExact ? reinterpret_cast<T*>(smem + L::oRows) : nullptr;
  const Lane l;
  const int64_t chain = blockIdx.x, b = chain / a.N, n = chain % a.N, S = a.S;
  const T *q = a.q.chain(b, n, a.N), *k = a.k.chain(b, n, a.N), *v = a.v.chain(b, n, a.N),
          *f = a.f.chain(b, n, a.N);
  T* y = a.y + (b * S * a.N + n) * C::V;
  const int64_t y_step = a.N * C::V;
  float* ypart0 = reinterpret_cast<float*>(smem + L::oY);
  // Checkpoints fall on tile ends (state_checkpoint_every is a multiple of PF, m2rnn_fused_check):
  // counted down per tile rather than found by a 64-bit modulo every tile.
  const int tiles_per_ck = static_cast<int>(a.C / PF);
  int ck_countdown = tiles_per_ck;
  float* ck = a.ck ? a.ck + chain * a.nck * C::K * C::V : nullptr;

  BOperand<C, C::kFwdBInRegs> W;
  W.init(a.W + n / (a.N / a.Nw) * C::V * C::V, false, smem + L::oB, l);
  Exchange<C> xc{reinterpret_cast<uint4*>(smem + L::oX)};
  Frag<C> h;
  load_state<C>(a.h0 ? a.h0 + chain * C::K * C::V : static_cast<const T*>(nullptr), h, l);
  // bf16 (k v^T on the tensor cores) with whole rows per warp: k v^T a step ahead, off the
  // step's dependent chain (faster at lm400m; with the columns split, CS = 2, slightly slower).
  constexpr bool kKvAhead = !C::kExact && !C::kTf32 && C::CS == 1;
  Frag<C> kv;

  St st;
  st.load(stage, a, q, k, v, f, nullptr, 0, true, l);
  st.finish(stage, l);
  __syncthreads();
  // With two buffers of partials, a full tile's y sums are deferred into the next tile's steps,
  // a slice a step: those steps are bound by their dependent chain and leave issue slots free,
  // whereas after the barrier the sums sat on every warp's path (faster at lm400m and wide).
  constexpr int kSlices = (PF * C::V + C::kBlockThreads - 1) / C::kBlockThreads;
  constexpr bool kDeferY = C::kYBuffers == 2 && kSlices <= PF;  // more a step spilled (K 16, V 64)
  int64_t deferred_t0 = 0;
  // The partials of the full tile from deferred_t0, not yet summed.
  const float* deferred = nullptr;
  auto sum_deferred = [&](int slice) {
    if (kDeferY && deferred) sum_y<C>(y, y_step, deferred_t0, PF, deferred, slice, l);
  };

  const int64_t tiles = (S + PF - 1) / PF;
  for (int64_t it = 0; it < tiles; ++it) {
    const int64_t t0 = it * PF;
    const int buf = it & 1;
    unsigned char* next = stage + (buf ^ 1) * St::kBytes;
    // The next tile's copies: with k v^T a step ahead, issued inside this tile's first step
    // (faster at lm400m); with the columns split (wide) ahead of the steps, where issuing them
    // inside was slower.
    auto stage_next = [&] {
      if (it + 1 < tiles) st.load(next, a, q, k, v, f, nullptr, t0 + PF, true, l);
    };
    constexpr bool kStageInStep = kKvAhead;
    if (!kStageInStep) stage_next();
    const unsigned char* sb = stage + buf * St::kBytes;
    const int steps = static_cast<int>(S - t0 < PF ? S - t0 : PF);
    float* ypart = ypart0 + (C::kYBuffers == 2 ? buf * PF * L::kYStep : 0);
    auto step = [&](int s) {
      const StepIn<C, St> in(sb, s);
      if constexpr (kKvAhead) {
        // The step's k v^T was issued a step ago (the tile's first, after the barrier), so its
        // loads and product are not on the chain from one step's state to the next.
        if (s == 0) outer_kv<C>(kv, in, l);
        Frag<C> acc;
        memcpy(acc, kv, sizeof acc);
        mul<C>(acc, h, W, rows, l, &xc);
        if (s + 1 < steps) outer_kv<C>(kv, StepIn<C, St>(sb, s + 1), l);
        gate<C>(h, acc, in.f);
      } else {
        advance<C>(h, h, W, in, rows, l, &xc);
      }
      column_partials<C>(h, in.q, ypart + s * L::kYStep, L::kYLd, l);
    };
    auto step_and_sum = [&](int s) {
      step(s);
      if (s < kSlices) sum_deferred(s);
      if (kStageInStep && s == 0) stage_next();  // only full tiles have one after them
    };
    // Full tiles unrolled, so that one step's y and the next step's independent work overlap the
    // dependent chain; the last, partial tile step by step. (The backward's loops stay rolled:
    // unrolled, they spilled and ran slower.)
    if (steps == PF) {
#pragma unroll
      for (int s = 0; s < PF; ++s) step_and_sum(s);
    } else {
#pragma unroll
      for (int slice = 0; slice < kSlices; ++slice) sum_deferred(slice);
#pragma unroll 1
      for (int s = 0; s < steps; ++s) step(s);
    }
    if (--ck_countdown == 0) {
      ck_countdown = tiles_per_ck;
      if (ck && t0 + PF < S) {
        store_state<C>(ck, h, l);
        ck += C::K * C::V;
      }
    }
    if (it + 1 < tiles) st.finish(next, l);
    __syncthreads();
    if (kDeferY && it + 1 < tiles) {
      deferred_t0 = t0, deferred = ypart;
    } else {
#pragma unroll 1
      for (int slice = 0; slice < kSlices; ++slice) sum_y<C>(y, y_step, t0, steps, ypart, slice, l);
    }
    // With one buffer, the partials are read before the next tile overwrites them.
    if (C::kYBuffers == 1 && it + 1 < tiles) __syncthreads();
  }
  store_state<C>(a.h_final + chain * C::K * C::V, h, l);
}

}  // namespace m2b::kernels::cuda::detail
