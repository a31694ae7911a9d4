#pragma once
// The fused backward kernel. The forward saves H every C steps (checkpoints, fp32). For chunk j
// (steps [jC, jC+C)) from last to first: pass 1 recomputes the chunk's states from its
// checkpoint and saves the state at the start of each tile of P steps to a scratch buffer
// (L2-resident); pass 2 takes the tiles in reverse, recomputes each tile's P states into shared
// memory and runs the reverse recurrence over them:
//   G = carry + q dy^T (clamped to [-c, c] when clipping), dq = H_t dy
//   Z = tanh(H_{t-1} W + k v^T), dA = (1 - f) G (1 - Z^2), df = sum G (H_{t-1} - Z)
//   dk = dA v, dv = dA^T k, carry = f G + dA W^T
// dA is kept in shared memory next to the states, and at the end of the tile the warps add
// H^T dA over all rows and the tile's steps to dW (a (P K)-deep product on tensor cores), each
// warp owning its own tiles of dW. Where a chain has a multiprocessor to itself, a second group
// of warps (recompute warps) runs pass 1, pass 2's forward and dW beside the group that runs the
// reverse recurrence, a tile ahead of it and a tile behind (BackwardSmem's rounds), and for bf16
// hands it each step's Z, which it then need not recompute.
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/m2rnn_fused_fragments.cuh"
#include "kernels/cuda/m2rnn_fused_products.cuh"
#include "kernels/cuda/m2rnn_fused_staging.cuh"
#include "kernels/cuda/m2rnn_fused_step.cuh"
#include "kernels/cuda/recurrence_args.cuh"

namespace m2b::kernels::cuda::detail {

// A timing-only build (CMake's M2BENCH_BACKWARD_SKIP, scripts/ablate-backward.sh) leaves these
// phases of the backward out, to measure what each adds to its time; its gradients are wrong.
// Every other build runs them all.
#ifndef M2B_BACKWARD_SKIP
#define M2B_BACKWARD_SKIP 0
#endif
enum BackwardPhase : unsigned {
  kStaging = 1,       // the next tile's inputs, by cp.async
  kPass1 = 2,         // the chunk's tile-start states, from its checkpoint
  kPass2Forward = 4,  // the reversed tile's states
  kReverse = 8,
  kDw = 16,
  kFlush = 32,  // the round's gradients, from shared memory out
  // Of the flush, the atomic adds of gradients whose heads are shared (dq and dk of the benchmark
  // shapes): what a design without them (per-head gradients, summed by another kernel) could save.
  kSharedAdds = 64,
};
__device__ constexpr bool backward_runs(BackwardPhase p) { return (M2B_BACKWARD_SKIP & p) == 0; }

// The fused kernels' dynamic shared memory (the forward kernel declares the same array).
extern __shared__ __align__(16) unsigned char smem[];

// The backward's order of tiles: per chunk (last first), pass 1 over tiles 0 .. n-2, then pass 2
// over tiles n-1 .. 0.
struct Tile {
  int64_t chunk = 0, sub = 0;
  bool grads = false, valid = true;
};
template <class C>
__device__ __forceinline__ int64_t tiles_in_chunk(const RecurrenceArgs<typename C::T>& a,
                                                  int64_t chunk) {
  const int64_t len = a.S - chunk * a.C < a.C ? a.S - chunk * a.C : a.C;
  return (len + C::P - 1) / C::P;
}
template <class C>
__device__ __forceinline__ Tile chunk_first_tile(const RecurrenceArgs<typename C::T>& a,
                                                 int64_t chunk) {
  Tile t;
  t.chunk = chunk;
  t.grads = tiles_in_chunk<C>(a, chunk) < 2;
  return t;
}
template <class C>
__device__ __forceinline__ Tile next_tile(const RecurrenceArgs<typename C::T>& a, Tile t) {
  const int64_t n = tiles_in_chunk<C>(a, t.chunk);
  if (!t.grads) {
    if (t.sub + 1 <= n - 2) ++t.sub;
    else t.sub = n - 1, t.grads = true;
    return t;
  }
  if (t.sub > 0) {
    --t.sub;
    return t;
  }
  if (t.chunk == 0) {
    t.valid = false;
    return t;
  }
  return chunk_first_tile<C>(a, t.chunk - 1);
}

// Rounds of the backward: in round r the tile t_r is recomputed (pass 1, or pass 2's forward into
// a slot of states) and the grads tile t_{r - kLag} reversed. Without recompute warps the same
// warps do both, in that order, on one tile, and add its dW (kLag 0). With them (kLag 1) the two
// groups run side by side, and the recompute warps also add the dW of t_{r - 2} (the reverse step
// is the critical path): tile r's staged inputs live two rounds, states and dA take two slots.
template <class C>
struct BackwardSmem {
  using St = Stage<C, true>;
  static constexpr int kLag = C::kRecomputeWarps ? 1 : 0;
  static constexpr int kStages = 2 + kLag, kSlots = 1 + kLag;
  static constexpr int kStateBytes = C::P * C::K * C::LD * static_cast<int>(sizeof(typename C::T));
  // Not formatted: the shared-memory layout, its buffers' shapes in a column.
  // clang-format off
  static constexpr int oStage = 0;                                // kStages Stage buffers
  static constexpr int kParts = C::NW > 1 ? 2 * C::P * C::NW : 0;  // dv, df partials (several warps)
  static constexpr int oDv = oStage + kStages * St::kBytes;       // float [2][P][NW][V]
  static constexpr int oDf = oDv + kParts * C::V * 4;             // float [2][P][NW]
  // Without recompute warps, dq and dk of a tile wait in shared memory for the round's flush
  // (put_row_sums): in two buffers by the round's parity where one warp may write the next
  // round's while another still flushes.
  static constexpr int kRowBufs = C::NW == 1 && !kLag ? 1 : 2;
  static constexpr int kGradRowBytes = kLag ? 0 : kRowBufs * 2 * C::P * C::K * 4;
  static constexpr int oGradRows = oDf + ((kParts * 4 + 15) / 16) * 16;  // float [kRowBufs][2][P][K]
  static constexpr int oDw = oGradRows + kGradRowBytes;                   // float [V][V]
  static constexpr int oStates = oDw + C::V * C::V * 4;           // T [kSlots][P][K][LD]
  static constexpr int oDa = oStates + kSlots * kStateBytes;      // T [kSlots][P][K][LD]
  static constexpr int oW = oDa + kSlots * kStateBytes;           // BOperand W
  static constexpr int oWt = oW + BOperand<C>::smem_bytes();      // BOperand W^T
  // clang-format on
  static constexpr int kBytes = oWt + BOperand<C>::smem_bytes();

  // The buffers by round: the staged inputs, the slots of states and dA (with kZKept, pass 2's
  // forward of round r leaves its Z in the dA slot of round r + 1), and the gradients that go
  // out after round r's barrier: without recompute warps, dq of the tile recomputed in round r
  // and dk of the tile reversed in it (grad_rows(0 or 1, r): [P][K]), and with several warps the
  // dv and df partials of the reversed tile ([P][NW][V], [P][NW]). Each names `smem` itself:
  // with the base behind a helper function, the compiler arranges the kernels' address
  // arithmetic differently.
  using T = typename C::T;
  static constexpr int kStep = C::K * C::LD;
  static __device__ __forceinline__ unsigned char* stage(unsigned round) {
    return smem + oStage + round % kStages * St::kBytes;
  }
  static __device__ __forceinline__ T* states(unsigned round) {
    return reinterpret_cast<T*>(smem + oStates) + round % kSlots * C::P * kStep;
  }
  static __device__ __forceinline__ T* dAs(unsigned round) {
    return reinterpret_cast<T*>(smem + oDa) + round % kSlots * C::P * kStep;
  }
  static __device__ __forceinline__ float* grad_rows(int which, unsigned r) {
    return reinterpret_cast<float*>(smem + oGradRows) + (r % kRowBufs * 2 + which) * C::P * C::K;
  }
  static __device__ __forceinline__ float* dv_parts(unsigned r) {
    return reinterpret_cast<float*>(smem + oDv) + (r & 1) * C::P * C::NW * C::V;
  }
  static __device__ __forceinline__ float* df_parts(unsigned r) {
    return reinterpret_cast<float*>(smem + oDf) + (r & 1) * C::P * C::NW;
  }
};

// n-tiles of dW per item of accumulate_dw: bf16 takes as many as still give every warp an item
// (at most 8, 32 accumulators, or 2 where registers are capped), each product's A fragment (H^T)
// then serving them all, loaded by twos (ldmatrix.x4); 1 where two would leave a warp without an
// item, and for fp32.
template <class C>
constexpr int dw_tiles() {
  if (C::kExact || C::kTf32) return 1;
  const int most = C::kMinBlocks > 1 ? 2 : 8;
  for (int t = C::NT < most ? C::NT : most; t >= 2; t /= 2)
    if (C::V / 16 * (C::NT / t) >= C::NW) return t;
  return 1;
}

// dW += sum over the tile's steps and all K rows of H_{t-1}^T dA, into shared fp32 dW. The
// output tiles (16 rows of dW by 8 kTiles columns) are dealt out to the warps, so each element of
// dW has one owner and takes plain adds: shared-memory float atomics compile to compare-and-swap
// loops on sm_90, which the warps' contention made the backward's largest cost. Every warp's
// states and dA of the tile must be in shared memory (a barrier before).
template <class C>
__device__ __forceinline__ void accumulate_dw(const typename C::T* states, const typename C::T* dA,
                                              int steps, float* dW, const Lane& l) {
  constexpr int kStep = C::K * C::LD;
  constexpr int kTiles = dw_tiles<C>();
  constexpr int kItems = C::V / 16 * (C::NT / kTiles);
#pragma unroll 1
  for (int item = l.w; item < kItems; item += C::NW) {
    const int mt = item / (C::NT / kTiles), nt0 = item % (C::NT / kTiles) * kTiles;
    float acc[kTiles][4];
#pragma unroll
    for (int u = 0; u < kTiles; ++u)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[u][i] = 0.f;
    for (int s = 0; s < steps; ++s) {
      const typename C::T* hs = states + s * kStep;
      const typename C::T* ds = dA + s * kStep;
      if constexpr (C::kExact) {
        for (int i = 0; i < C::K; ++i) {
          const float a0 = hs[i * C::LD + 16 * mt + l.g], a1 = hs[i * C::LD + 16 * mt + l.g + 8];
          const float2 d = load_pair(ds + i * C::LD + col_of<C>(l, nt0));
          acc[0][0] = fmaf(a0, d.x, acc[0][0]);
          acc[0][1] = fmaf(a0, d.y, acc[0][1]);
          acc[0][2] = fmaf(a1, d.x, acc[0][2]);
          acc[0][3] = fmaf(a1, d.y, acc[0][3]);
        }
      } else if constexpr (C::kTf32) {
#pragma unroll 4
        for (int k0 = 0; k0 < C::K; k0 += 8) {
          const float* h0 = hs + (k0 + l.j) * C::LD + 16 * mt + l.g;
          const float* h1 = h0 + 4 * C::LD;
          const float* d = ds + (k0 + l.j) * C::LD + 8 * nt0 + l.g;
          mma_tf32(acc[0], to_tf32(h0[0]), to_tf32(h0[8]), to_tf32(h1[0]), to_tf32(h1[8]),
                   to_tf32(d[0]), to_tf32(d[4 * C::LD]));
        }
      } else {
        const int lane = l.tid & 31;
#pragma unroll 4
        for (int k0 = 0; k0 < C::K; k0 += 16) {
          uint32_t a[4];
          ldmatrix_x4_trans(a, hs + (k0 + (lane & 7) + 8 * (lane >> 4)) * C::LD + 16 * mt +
                                   8 * ((lane >> 3) & 1));
          const typename C::T* brow =
              ds + (k0 + (lane & 7) + 8 * ((lane >> 3) & 1)) * C::LD + 8 * nt0;
          if constexpr (kTiles > 1) {
#pragma unroll
            for (int u = 0; u < kTiles; u += 2) {
              uint32_t bq[4];
              ldmatrix_x4_trans(bq, brow + 8 * u + 8 * (lane >> 4));
              mma_bf16(acc[u], a[0], a[1], a[2], a[3], bq[0], bq[1]);
              mma_bf16(acc[u + 1], a[0], a[1], a[2], a[3], bq[2], bq[3]);
            }
          } else {
            uint32_t bq[2];
            ldmatrix_x2_trans(bq, brow);
            mma_bf16(acc[0], a[0], a[1], a[2], a[3], bq[0], bq[1]);
          }
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kTiles; ++u)
#pragma unroll
      for (int i = 0; i < 4; ++i)
        dW[(16 * mt + l.g + 8 * (i >> 1)) * C::V + col_of<C>(l, nt0 + u) + (i & 1)] += acc[u][i];
  }
}

// The phases of a round of the backward (BackwardSmem): recompute a tile, reverse one, flush
// the gradients the round left in shared memory. They work on the kernel's own variables, which
// this holds by reference: the views of the chain's gradients, the thread's place, W and W^T in
// their operand form, the state h that the recomputation carries and the reverse recurrence's
// carry (references, not copies: with copies the compiler generates other code for the
// kernels). fused_backward_kernel sets them up and runs the rounds.
template <class C>
struct BackwardPhases {
  using T = typename C::T;
  using L = BackwardSmem<C>;
  using St = typename L::St;
  using In = StepIn<C, St>;
  static constexpr int kLag = L::kLag;
  static constexpr int kStep = L::kStep;
  // With recompute warps, pass 2's forward leaves each step's Z in fp16 where the reverse step
  // will write that step's dA (the slot of the next round), and the reverse step reads it instead
  // of recomputing H W + k v^T and its tanh on the critical path. Z lies in (-1, 1), where fp16
  // keeps 11 bits, about tanh.approx's own error (bf16's 8 doubled df's error). bf16 only: a
  // same-sized element, so each lane overwrites just the Z it has read. It shortens the wide
  // forward+backward mostly with a checkpoint every 8 steps: at the default interval the
  // recompute warps, busy with pass 1, pass 2's forward and dW, are the bound.
  static constexpr bool kZKept = kLag && sizeof(T) == 2;

  const RecurrenceArgs<T>& a;
  const Lane &lb, &l;  // the thread in the block, and in its group of warps
  const int64_t &chain, &S;
  const typename GradOut<T>::Chain &dq_out, &dk_out, &dv_out, &df_out;
  // Not formatted: clang-format 14 writes BOperand<C>&W, &Wt.
  // clang-format off
  const BOperand<C> &W, &Wt;
  Frag<C> &carry, &h;
  // clang-format on
  float4* const& scratch;  // the start states of the tiles of pass 2, saved by pass 1
  const T* const& h0;

  // The barrier of one group of warps (with recompute warps: theirs).
  static __device__ __forceinline__ void group_sync() {
    if constexpr (kLag) asm volatile("bar.sync 1, %0;" ::"n"(C::kThreads) : "memory");
    else if constexpr (C::NW > 1) __syncthreads();
    else __syncwarp();
  }

  __device__ __forceinline__ int64_t tile_t0(const Tile& t) const {
    return t.chunk * a.C + t.sub * C::P;
  }
  __device__ __forceinline__ int tile_steps(const Tile& t) const {
    const int64_t t0 = tile_t0(t);
    return static_cast<int>(S - t0 < C::P ? S - t0 : C::P);
  }

  // Tile sub's start state, K V floats in fragment order (float4 i of thread tid at
  // i kThreads + tid).
  __device__ __forceinline__ float4* scratch_tile(int64_t sub) const {
    return scratch + sub * C::MT * C::NT * C::kThreads;
  }
  __device__ __forceinline__ float* checkpoint(int64_t chunk) const {
    return a.ck + (chain * a.nck + chunk - 1) * C::K * C::V;
  }
  // A tile's start state is loaded at a chunk's first tile (its checkpoint, or h0) and at the
  // grads tiles whose start pass 1 saved to scratch; elsewhere it carries over in h (pass 1's
  // tiles follow one another, and pass 1 ends where the chunk's last tile starts).
  __device__ __forceinline__ bool loads_start(const Tile& t) const {
    return t.sub == 0 || (t.grads && t.sub + 1 < tiles_in_chunk<C>(a, t.chunk));
  }
  __device__ __forceinline__ void load_start(const Tile& t) const {
    if (t.sub == 0) {
      if (t.chunk == 0) load_state<C>(h0, h, l);
      else load_state<C>(checkpoint(t.chunk), h, l);
      return;
    }
#pragma unroll
    for (int m = 0; m < C::MT; ++m)
#pragma unroll
      for (int nt = 0; nt < C::NT; ++nt) {
        const float4 x = scratch_tile(t.sub)[(m * C::NT + nt) * C::kThreads + l.tid];
        h[m][nt][0] = x.x, h[m][nt][1] = x.y, h[m][nt][2] = x.z, h[m][nt][3] = x.w;
      }
  }
  // The next tile's start state is prefetched into L1 a tile ahead, which hides the latency of
  // its load without holding registers.
  __device__ __forceinline__ void prefetch_start(const Tile& t) const {
    const void* p = t.sub > 0     ? static_cast<const void*>(scratch_tile(t.sub))
                    : t.chunk > 0 ? static_cast<const void*>(checkpoint(t.chunk))
                                  : h0;
    const int bytes = C::K * C::V * (t.sub == 0 && t.chunk == 0 ? static_cast<int>(sizeof(T)) : 4);
    if (p)
      for (int off = 128 * l.tid; off < bytes; off += 128 * C::kThreads)
        prefetch_l1(static_cast<const char*>(p) + off);
  }

  // dq or dk (which 0 or 1) of step t0 + s from the lanes that hold them whole. Without
  // recompute warps into round r's buffer for the flush after its barrier: these lanes are a
  // quarter of each warp, and their own puts (address arithmetic and the shared-head branch per
  // element) cost the single group more than its share of the flush. With recompute warps
  // straight out: the flush would sit on the reversing warps' critical path.
  __device__ __forceinline__ void put_row_sums(int which, unsigned r, int64_t t0, int s,
                                               const float (&x)[C::MT][2]) const {
    if (l.j != 0) return;
#pragma unroll
    for (int m = 0; m < C::MT; ++m)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        if constexpr (kLag) (which ? dk_out : dq_out).put(t0 + s, row_of<C>(l, m, hh), x[m][hh]);
        else L::grad_rows(which, r)[s * C::K + row_of<C>(l, m, hh)] = x[m][hh];
      }
  }

  // Pass 1 over tile t (staged in sb): carries h through it and keeps where the next tile starts
  // for pass 2 (but the chunk's last tile, which starts from h).
  __device__ __forceinline__ void pass1_steps(const Tile& t, const unsigned char* sb, T* rows,
                                              int steps) const {
    for (int s = 0; s < steps; ++s) advance<C>(h, h, W, In(sb, s), C::kExact ? rows : nullptr, l);
    if (t.sub + 2 < tiles_in_chunk<C>(a, t.chunk))
#pragma unroll
      for (int m = 0; m < C::MT; ++m)
#pragma unroll
        for (int nt = 0; nt < C::NT; ++nt)
          scratch_tile(t.sub + 1)[(m * C::NT + nt) * C::kThreads + l.tid] =
              make_float4(h[m][nt][0], h[m][nt][1], h[m][nt][2], h[m][nt][3]);
  }
  // Pass 2's forward over round r's tile (staged in sb, from step t0): its states to `rows`, the
  // round's slot, for the reverse step, with dq_t = H_t dy_t on the way. h_op: h, or (bf16) its
  // pairs, each state packed once for its store, its product and dq (ptxas shares none of the
  // three packings); repack: h_op after h's step.
  template <class HOp, class Repack>
  __device__ __forceinline__ void pass2_steps(const HOp& h_op, Repack repack,
                                              const unsigned char* sb, T* rows, int64_t t0,
                                              int steps, unsigned r) const {
    for (int s = 0; s < steps; ++s) {
      const In in(sb, s);
      advance<C>(h, h_op, W, in, rows + s * kStep, l, nullptr,
                 kZKept ? reinterpret_cast<__half*>(L::dAs(r + 1) + s * kStep) : nullptr);
      repack();
      float dq[C::MT][2];
      row_sums<C>(h_op, in.dy, dq, l);
      put_row_sums(0, r, t0, s, dq);
    }
  }
  // Round r's tile t, from its start: pass 1, or pass 2's forward into the round's slot of states.
  __device__ __forceinline__ void recompute(const Tile& t, unsigned r) const {
    const int64_t t0 = tile_t0(t);
    const int steps = tile_steps(t);
    const unsigned char* sb = L::stage(r);
    T* rows = L::states(r);
    if (loads_start(t)) load_start(t);
    if (!t.grads) {
      if (backward_runs(kPass1)) pass1_steps(t, sb, rows, steps);
      return;
    }
    if (!backward_runs(kPass2Forward)) return;
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      Pairs<C> hb;
      pack_pairs<C>(h, hb);
      // Not formatted: clang-format 14 breaks a call with a lambda before its last argument.
      // clang-format off
      pass2_steps(hb, [&] { pack_pairs<C>(h, hb); }, sb, rows, t0, steps, r);
    } else {
      pass2_steps(h, [] {}, sb, rows, t0, steps, r);
      // clang-format on
    }
  }

  // dA = (1 - f) G (1 - Z^2) of step s from hp, H_{t-1} as stored at hrows, Z = tanh(H_{t-1} W +
  // k v^T) (kZKept: as pass 2's forward left it in round r's dA slot); returns the lane's part of
  // df = sum G (H_{t-1} - Z).
  template <class HP>
  __device__ __forceinline__ float gate_grads(Frag<C>& dA, const HP& hp, const Frag<C>& G,
                                              const In& in, float fs, const T* hrows, unsigned r,
                                              int s) const {
    if constexpr (kZKept)
      load_frag<C>(reinterpret_cast<__half*>(L::dAs(r) + s * kStep), C::LD, dA, l);
    else preactivation<C>(dA, hp, W, in, hrows, l);
    float df = 0.f;
    for_each_elem<C>([&](int m, int nt, int i) {
      const float z = kZKept ? dA[m][nt][i] : tanh_<C::kExact>(dA[m][nt][i]);
      const float gz = G[m][nt][i];
      df = fmaf(gz, elem<C>(hp, m, nt, i) - z, df);
      dA[m][nt][i] = (1.f - fs) * gz * fmaf(-z, z, 1.f);
    });
    return df;
  }
  // dv and df of step t0 + s sum over all K rows: one warp has them whole, more add their
  // partials (dvp, dfp) up after the round's barrier.
  __device__ __forceinline__ void put_dv_df(const float (&dv)[C::NT][2], float df, float* dvp,
                                            float* dfp, int64_t t0, int s) const {
    if constexpr (C::NW == 1) {
      if (l.g == 0)
#pragma unroll
        for (int nt = 0; nt < C::NT; ++nt) {
          dv_out.put(t0 + s, col_of<C>(l, nt), dv[nt][0]);
          dv_out.put(t0 + s, col_of<C>(l, nt) + 1, dv[nt][1]);
        }
      if (l.tid == 0) df_out.put(t0 + s, 0, df);
    } else {
      if (l.g == 0)
#pragma unroll
        for (int nt = 0; nt < C::NT; ++nt)
          *reinterpret_cast<float2*>(dvp + (s * C::NW + l.w) * C::V + col_of<C>(l, nt)) =
              make_float2(dv[nt][0], dv[nt][1]);
      if ((l.tid & 31) == 0) dfp[s * C::NW + l.w] = df;
    }
  }
  // Step t0 + s of round r's reverse recurrence (its inputs staged in sb), from carry_{t+1} to
  // carry_t: H_{t-1} from the tile's states at `rows`, dA to the tile's dA_rows (for dW), dk out
  // (put_row_sums), dv and df out or to the partials dvp and dfp.
  __device__ __forceinline__ void reverse_step(const unsigned char* sb, const T* rows, T* dA_rows,
                                               float* dvp, float* dfp, int64_t t0, int s,
                                               unsigned r) const {
    const In in(sb, s);
    const float fs = in.f;
    Frag<C>& G = carry;  // G overwrites carry: carry_{t+1} is not needed past this point
    add_outer<C>(G, in.q, in.dy, l);
    if (a.clip > 0)
      for_each_elem<C>(
          [&](int m, int nt, int i) { G[m][nt][i] = fminf(fmaxf(G[m][nt][i], -a.clip), a.clip); });
    const T* hrows = rows + s * kStep;
    T* arows = dA_rows + s * kStep;
    Frag<C> dA;  // Z (or before kZKept its pre-activation) goes in dA's registers
    // hp: H_{t-1} as stored; bf16 keeps its pairs, the product's operand as they are, unpacked
    // element by element where df needs them, where registers are not capped (under lm400m's
    // cap of 128, ptxas then moved registers around in pass 1 and dW, which grew by more than
    // this loop shrank).
    std::conditional_t<std::is_same_v<T, __nv_bfloat16> && C::kMinBlocks == 1, Pairs<C>, Frag<C>>
        hp;
    load_frag<C>(hrows, C::LD, hp, l);
    float df = gate_grads(dA, hp, G, in, fs, hrows, r, s);
    __syncwarp();
    store_frag<C>(arows, C::LD, dA, l);
    __syncwarp();
    float dk[C::MT][2], dv[C::NT][2];
    row_sums<C>(dA, in.v, dk, l);
    column_sums<C>(dA, arows, in.k, dv, l);
    df = butterfly_sum<1, 16>(df);
    put_row_sums(1, r, t0, s, dk);
    put_dv_df(dv, df, dvp, dfp, t0, s);
    // carry_t = f G + dA W^T
    for_each_elem<C>([&](int m, int nt, int i) { carry[m][nt][i] = fs * G[m][nt][i]; });
    mul<C>(carry, dA, Wt, arows, l);
  }
  // Round r's reverse recurrence over grads tile t, which round rr recomputed: dA to round r's
  // slot, dv and df partials (several warps) to parity r & 1 of their buffers, summed after the
  // round's barrier.
  __device__ __forceinline__ void reverse(const Tile& t, unsigned rr, unsigned r) const {
    const int64_t t0 = tile_t0(t);
    const int steps = tile_steps(t);
    const unsigned char* sb = L::stage(rr);
    const T* rows = L::states(rr);
    T* dA_rows = L::dAs(r);
    float* dvp = L::dv_parts(r);
    float* dfp = L::df_parts(r);
    for (int s = steps - 1; s >= 0; --s) reverse_step(sb, rows, dA_rows, dvp, dfp, t0, s, r);
  }

  // After the round's barrier, the gradients the round left in shared memory go out, each in
  // one loop over consecutive elements: without recompute warps dq of the recomputed tile and dk
  // of the reversed one, and with several warps dv and df of the reversed one, summed over the
  // warps' partials.
  __device__ __forceinline__ void flush(const Tile& recomputed, const Tile& reversed,
                                        unsigned r) const {
    auto rows_out = [&](const auto& out, const float* rows, const Tile& t) {
      out.template put_tile<C::K, C::kBlockThreads>(tile_t0(t), tile_steps(t), lb.tid,
                                                    [&](int e) { return rows[e]; });
    };
    auto adds = [](const auto& out) { return backward_runs(kSharedAdds) || !out.acc; };
    if constexpr (!kLag) {
      if (recomputed.valid && recomputed.grads && adds(dq_out))
        rows_out(dq_out, L::grad_rows(0, r), recomputed);
      if (reversed.valid && reversed.grads && adds(dk_out))
        rows_out(dk_out, L::grad_rows(1, r), reversed);
    }
    if (!reversed.valid || !reversed.grads) return;
    if constexpr (C::NW > 1) {
      const int64_t t0 = tile_t0(reversed);
      const int steps = tile_steps(reversed);
      const float* dvp = L::dv_parts(r);
      const float* dfp = L::df_parts(r);
      dv_out.template put_tile<C::V, C::kBlockThreads>(t0, steps, lb.tid, [&](int e) {
        float x = 0.f;
#pragma unroll
        for (int w = 0; w < C::NW; ++w) x += dvp[(e / C::V * C::NW + w) * C::V + e % C::V];
        return x;
      });
      df_out.template put_tile<1, C::kBlockThreads>(t0, steps, lb.tid, [&](int s) {
        float x = 0.f;
#pragma unroll
        for (int w = 0; w < C::NW; ++w) x += dfp[s * C::NW + w];
        return x;
      });
    }
  }
};

template <class C>
__global__ void __launch_bounds__(C::kBlockThreads, C::kMinBlocks)
    fused_backward_kernel(const RecurrenceArgs<typename C::T> a) {
  // Split columns (warp pairs swapping halves of both products' A operands, P 4 to make room)
  // made wide's backward slower.
  static_assert(C::CS == 1, "the backward keeps whole rows in a warp");
  using T = typename C::T;
  using L = BackwardSmem<C>;
  using Phases = BackwardPhases<C>;
  constexpr int kLag = L::kLag;
  float* dWs = reinterpret_cast<float*>(smem + L::oDw);
  // Roles: with recompute warps, warps [NW, 2 NW) recompute and [0, NW) reverse; `l` numbers a
  // thread within its group, `lb` within the block (block-wide loops).
  const Lane lb;
  const bool recomputes = kLag == 0 || lb.w >= C::NW, reverses = kLag == 0 || lb.w < C::NW;
  const Lane l = kLag && recomputes ? lb.in_group(C::NW) : lb;
  const int64_t chain = blockIdx.x, b = chain / a.N, n = chain % a.N, S = a.S, N = a.N;
  const int64_t hw = n / (N / a.Nw);
  const T *q = a.q.chain(b, n, N), *k = a.k.chain(b, n, N), *v = a.v.chain(b, n, N),
          *f = a.f.chain(b, n, N), *dy = a.dy.chain(b, n, N);
  const auto dq_out = a.dq.chain(b, n, N, S, C::K), dk_out = a.dk.chain(b, n, N, S, C::K),
             dv_out = a.dv.chain(b, n, N, S, C::V), df_out = a.df.chain(b, n, N, S, 1);

  BOperand<C> W, Wt;
  W.init(a.W + hw * C::V * C::V, false, smem + L::oW, lb);
  Wt.init(a.W + hw * C::V * C::V, true, smem + L::oWt, lb);
  for (int e = lb.tid; e < C::V * C::V; e += C::kBlockThreads) dWs[e] = 0.f;

  Frag<C> carry, h;
  if (reverses)
    load_state<C>(a.dh_final ? a.dh_final + chain * C::K * C::V : static_cast<const T*>(nullptr),
                  carry, l);
  float4* scratch =
      reinterpret_cast<float4*>(a.scratch) + chain * (a.C / C::P) * C::MT * C::NT * C::kThreads;
  const T* h0 = a.h0 ? a.h0 + chain * C::K * C::V : nullptr;
  const Phases ph{a, lb, l, chain, S, dq_out, dk_out, dv_out, df_out, W, Wt, carry, h, scratch, h0};

  // t_r, and with recompute warps t_{r - 1} (reversed) and t_{r - 2} (its dW)
  Tile cur = chunk_first_tile<C>(a, (S + a.C - 1) / a.C - 1), prev = cur, prev2 = cur;
  prev.valid = prev2.valid = false;
  typename L::St st;
  st.load(L::stage(0), a, q, k, v, f, dy, ph.tile_t0(cur), cur.grads, lb);
  st.finish(L::stage(0), lb);
  __syncthreads();
  for (unsigned r = 0;; ++r) {
    const Tile& rev = kLag ? prev : cur;
    const Tile& dwt = kLag ? prev2 : cur;
    Tile nxt;
    nxt.valid = false;
    if (cur.valid) nxt = next_tile<C>(a, cur);
    if (nxt.valid && backward_runs(kStaging))
      st.load(L::stage(r + 1), a, q, k, v, f, dy, ph.tile_t0(nxt), nxt.grads, lb);
    if (recomputes) {
      if (kLag && dwt.valid && dwt.grads && backward_runs(kDw)) {
        // Its states' slot is the one this round's tile goes to.
        accumulate_dw<C>(L::states(r - 2), L::dAs(r - 1), ph.tile_steps(dwt), dWs, l);
        Phases::group_sync();
      }
      if (cur.valid) {
        if (nxt.valid && ph.loads_start(nxt)) ph.prefetch_start(nxt);
        ph.recompute(cur, r);
      }
    }
    const bool reversing = rev.valid && rev.grads;
    if (reverses && reversing) {
      if (backward_runs(kReverse)) ph.reverse(rev, r - kLag, r);
      if (!kLag && backward_runs(kDw)) {
        Phases::group_sync();
        accumulate_dw<C>(L::states(r), L::dAs(r), ph.tile_steps(rev), dWs, l);
      }
    }
    if (nxt.valid && backward_runs(kStaging)) st.finish(L::stage(r + 1), lb);
    __syncthreads();
    if (backward_runs(kFlush)) ph.flush(cur, rev, r);
    if constexpr (L::kRowBufs == 1)
      __syncwarp();  // the flush's reads before the next round's writes
    if constexpr (kLag) {
      if (!cur.valid && !prev.valid) break;
      prev2 = prev;
      prev = cur;
    } else if (!nxt.valid) {
      break;
    }
    cur = nxt;
  }
  __syncthreads();
  for (int e = lb.tid; e < C::V * C::V; e += C::kBlockThreads)
    atomicAdd(a.dW + hw * C::V * C::V + e, dWs[e]);
  if (a.dh0 && reverses) store_state<C>(a.dh0 + chain * C::K * C::V, carry, l);
}

}  // namespace m2b::kernels::cuda::detail
