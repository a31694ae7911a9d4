#pragma once
// Fused M2RNN kernels: one thread block per (batch, head) chain, for the whole sequence.
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
// memory every step (wide forward 1.04 -> 0.92 ms). Only y (forward) and dv, df (backward) sum
// over rows of several warps: through shared memory, once per tile.
//
// Tiles. Inputs (q, k, v, f, dy) come in tiles of steps (PF in the forward, P in the backward),
// staged in shared memory by the whole block with cp.async: the next tile's copies are issued
// before the current tile's steps run and awaited after them; one barrier per tile. The forward
// writes each step's y as per-lane partial sums and adds them up once per tile.
//
// Backward. The forward saves H every C steps (checkpoints, fp32). For chunk j (steps [jC,
// jC+C)) from last to first: pass 1 recomputes the chunk's states from its checkpoint and saves
// the state at the start of each tile of P steps to a scratch buffer (L2-resident); pass 2 takes
// the tiles in reverse, recomputes each tile's P states into shared memory and runs the reverse
// recurrence over them:
//   G = carry + q dy^T (clamped to [-c, c] when clipping), dq = H_t dy
//   Z = tanh(H_{t-1} W + k v^T), dA = (1 - f) G (1 - Z^2), df = sum G (H_{t-1} - Z)
//   dk = dA v, dv = dA^T k, carry = f G + dA W^T
// dA is kept in shared memory next to the states, and at the end of the tile the warps add
// H^T dA over all rows and the tile's steps to dW (a (P K)-deep product on tensor cores), each
// warp owning its own tiles of dW. Where a chain has a multiprocessor to itself, a second group
// of warps (recompute warps) runs pass 1, pass 2's forward and dW beside the group that runs the
// reverse recurrence, a tile ahead of it and a tile behind (BackwardSmem's rounds; wide forward+
// backward 6.78 -> 6.4 ms), and for bf16 hands it each step's Z, which it then need not recompute.
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/recurrence_args.cuh"

namespace m2b::kernels::cuda::detail {

template <typename T_, int K_, int V_, int MT_, int P_, bool kExact_, int kMinBlocks_ = 1, int CS_ = 1,
          bool kRecomputeWarps_ = false>
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
  static constexpr int NT = V / (8 * CS);  // n-tiles per warp
  static constexpr int kRows = 16 * MT;  // rows per warp
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
  static constexpr int kExchangeBytes = CS > 1 ? 2 * NW * MT * KSW * 32 * 16 : 0;  // Exchange
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
  static_assert(CS == 1 || (CS == 2 && !kExact && KS % 2 == 0), "columns split in two, on tensor cores");
  static_assert(!kExact || std::is_same_v<T, float>, "the exact path takes fp32 inputs");
  static_assert(!kRecomputeWarps || (CS == 1 && !kExact), "recompute warps: whole rows, tensor cores");
};

template <class C>
using Frag = float[C::MT][C::NT][4];
// bf16: a fragment's values as the pairs a_frag packs (pair h of n-tile nt: elements 2h, 2h + 1),
// where they come packed already (a state read back from shared memory).
template <class C>
using Pairs = uint32_t[C::MT][C::NT][2];

// Thread coordinates inside the block.
struct Lane {
  int tid, w, g, j;
  __device__ Lane() : tid(threadIdx.x), w(threadIdx.x >> 5), g((threadIdx.x & 31) >> 2),
                      j(threadIdx.x & 3) {}
  // The same thread, numbered within the group of warps that starts at warp w0.
  __device__ Lane in_group(int w0) const {
    Lane x = *this;
    x.w -= w0;
    x.tid -= 32 * w0;
    return x;
  }
};

// The warp's row block and column block.
template <class C>
__device__ __forceinline__ int row_warp(const Lane& l) { return l.w / C::CS; }
template <class C>
__device__ __forceinline__ int col_warp(const Lane& l) { return l.w % C::CS; }
template <class C>
__device__ __forceinline__ int row_of(const Lane& l, int m, int h) {
  return row_warp<C>(l) * C::kRows + 16 * m + l.g + 8 * h;
}
template <class C>
__device__ __forceinline__ int col_base(const Lane& l) { return col_warp<C>(l) * (C::V / C::CS); }
template <class C>
__device__ __forceinline__ int col_of(const Lane& l, int nt) {
  return col_base<C>(l) + 8 * nt + 2 * l.j;
}

// Fragment <-> rows of a K x V matrix (row stride ld), in shared or global memory: fn(m, h, nt,
// offset of the lane's pair of n-tile nt in row half h of m-tile m).
template <class C, typename Fn>
__device__ __forceinline__ void for_each_pair(int ld, const Lane& l, Fn&& fn) {
#pragma unroll
  for (int m = 0; m < C::MT; ++m)
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int nt = 0; nt < C::NT; ++nt) fn(m, h, nt, row_of<C>(l, m, h) * ld + col_of<C>(l, nt));
}
template <class C, typename S>
__device__ __forceinline__ void store_frag(S* base, int ld, const Frag<C>& x, const Lane& l) {
  for_each_pair<C>(ld, l, [&](int m, int h, int nt, int o) {
    store_pair<S>(base + o, x[m][nt][2 * h], x[m][nt][2 * h + 1]);
  });
}
template <class C>
__device__ __forceinline__ void store_frag(__nv_bfloat16* base, int ld, const Pairs<C>& x, const Lane& l) {
  for_each_pair<C>(ld, l, [&](int m, int h, int nt, int o) {
    *reinterpret_cast<uint32_t*>(base + o) = x[m][nt][h];
  });
}
template <class C, typename S>
__device__ __forceinline__ void load_frag(const S* base, int ld, Frag<C>& x, const Lane& l) {
  for_each_pair<C>(ld, l, [&](int m, int h, int nt, int o) {
    const float2 p = load_pair<S>(base + o);
    x[m][nt][2 * h] = p.x;
    x[m][nt][2 * h + 1] = p.y;
  });
}
template <class C>
__device__ __forceinline__ void load_frag(const __nv_bfloat16* base, int ld, Pairs<C>& x, const Lane& l) {
  for_each_pair<C>(ld, l, [&](int m, int h, int nt, int o) {
    x[m][nt][h] = *reinterpret_cast<const uint32_t*>(base + o);
  });
}
// Element i of n-tile nt of a fragment, held as floats or as bf16 pairs.
template <class C>
__device__ __forceinline__ float elem(const Frag<C>& x, int m, int nt, int i) { return x[m][nt][i]; }
template <class C>
__device__ __forceinline__ float elem(const Pairs<C>& x, int m, int nt, int i) {
  const uint32_t p = x[m][nt][i >> 1];
  return __uint_as_float(i & 1 ? p & 0xffff0000u : p << 16);
}
// fn(m, nt, i) for each element the lane holds of a fragment: element i of n-tile nt of m-tile m.
template <class C, typename Fn>
__device__ __forceinline__ void for_each_elem(Fn&& fn) {
#pragma unroll
  for (int m = 0; m < C::MT; ++m)
#pragma unroll
    for (int nt = 0; nt < C::NT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) fn(m, nt, i);
}
// Global K x V state (contiguous, any alignment): scalar accesses; nullptr reads zeros.
template <class C, typename S>
__device__ __forceinline__ void load_state(const S* src, Frag<C>& x, const Lane& l) {
#pragma unroll
  for (int m = 0; m < C::MT; ++m)
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int nt = 0; nt < C::NT; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e)
          x[m][nt][2 * h + e] =
              src ? to_float<S>(src[row_of<C>(l, m, h) * C::V + col_of<C>(l, nt) + e]) : 0.f;
}
template <class C, typename S>
__device__ __forceinline__ void store_state(S* dst, const Frag<C>& x, const Lane& l) {
#pragma unroll
  for (int m = 0; m < C::MT; ++m)
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int nt = 0; nt < C::NT; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e)
          dst[row_of<C>(l, m, h) * C::V + col_of<C>(l, nt) + e] =
              from_float<S>(x[m][nt][2 * h + e]);
}

// The right-hand V x V operand of a product (W, or W^T for the backward's dA W^T): tensor-core
// B fragments in registers (small V) or shared memory, or for the exact path the fp32 matrix.
template <class C, bool kInRegs = C::kBInRegs>
struct BOperand {
  static constexpr int NTV = C::V / 8;  // n-tiles of all V columns
  static constexpr int kFrags = C::KS * NTV;
  // The warp's own n-tiles, by k-step in the warp's order: those of its own columns first (CS = 2),
  // so that the products index registers by compile-time constants.
  uint32_t reg[C::KS][C::NT][2];
  const uint2* frag_smem;  // [KS][NTV][32]
  const float* mat_smem;   // V x V
  static constexpr int smem_bytes() {
    return C::kExact ? C::V * C::V * 4 : (kInRegs ? 0 : kFrags * 32 * 8);
  }

  // B(l, c) = W[l][c], or W[c][l] when transposed.
  static __device__ float at(const typename C::T* W, bool transposed, int l, int c) {
    return to_float(transposed ? W[c * C::V + l] : W[l * C::V + c]);
  }
  static __device__ uint2 make_frag(const typename C::T* W, bool tr, int ks, int nt, int lane) {
    const int g = lane >> 2, j = lane & 3, c = 8 * nt + g;
    if constexpr (C::kTf32) {
      return make_uint2(to_tf32(at(W, tr, 8 * ks + 2 * j, c)), to_tf32(at(W, tr, 8 * ks + 2 * j + 1, c)));
    } else {
      const int l = 16 * ks + 2 * j;
      return make_uint2(pack_bf16(at(W, tr, l, c), at(W, tr, l + 1, c)),
                        pack_bf16(at(W, tr, l + 8, c), at(W, tr, l + 9, c)));
    }
  }
  // Block-wide; the caller syncs before use.
  __device__ void init(const typename C::T* W, bool transposed, void* smem, const Lane& l) {
    if constexpr (C::kExact) {
      float* m = static_cast<float*>(smem);
      for (int e = l.tid; e < C::V * C::V; e += C::kBlockThreads)
        m[e] = at(W, transposed, e / C::V, e % C::V);
      mat_smem = m;
    } else if constexpr (kInRegs) {
#pragma unroll
      for (int ks = 0; ks < C::KS; ++ks)
#pragma unroll
        for (int nt = 0; nt < C::NT; ++nt) {
          const uint2 f =
              make_frag(W, transposed, global_ks(ks), col_warp<C>(l) * C::NT + nt, threadIdx.x & 31);
          reg[ks][nt][0] = f.x;
          reg[ks][nt][1] = f.y;
        }
    } else {
      uint2* s = static_cast<uint2*>(smem);
      for (int e = l.tid; e < kFrags * 32; e += C::kBlockThreads)
        s[e] = make_frag(W, transposed, e / (32 * NTV), (e / 32) % NTV, e % 32);
      frag_smem = s;
    }
  }
  // The k-step of B that is the warp's k-step ks.
  static __device__ __forceinline__ int global_ks(int ks) {
    return ((ks / C::KSW + col_warp<C>(Lane())) % C::CS) * C::KSW + ks % C::KSW;
  }
  // The B fragment of the warp's k-step ks and own n-tile nt.
  __device__ __forceinline__ uint2 frag(int ks, int nt) const {
    if constexpr (kInRegs) return make_uint2(reg[ks][nt][0], reg[ks][nt][1]);
    else return frag_smem[(global_ks(ks) * NTV + col_warp<C>(Lane()) * C::NT + nt) * 32 + (threadIdx.x & 31)];
  }
};

// The tensor-core A fragment of the warp's own k-step ks of a (rows 16m ..): bf16, the pairs of
// n-tiles 2ks and 2ks + 1; tf32, n-tile ks with k index j <-> column 2j, j + 4 <-> column 2j + 1
// (the B fragments match).
template <class C>
__device__ __forceinline__ uint4 a_frag(const Frag<C>& a, int m, int ks) {
  if constexpr (C::kTf32)
    return make_uint4(to_tf32(a[m][ks][0]), to_tf32(a[m][ks][2]), to_tf32(a[m][ks][1]),
                      to_tf32(a[m][ks][3]));
  else
    return make_uint4(pack_bf16(a[m][2 * ks][0], a[m][2 * ks][1]),
                      pack_bf16(a[m][2 * ks][2], a[m][2 * ks][3]),
                      pack_bf16(a[m][2 * ks + 1][0], a[m][2 * ks + 1][1]),
                      pack_bf16(a[m][2 * ks + 1][2], a[m][2 * ks + 1][3]));
}
// The A fragment from Pairs: no packing.
template <class C>
__device__ __forceinline__ uint4 a_frag(const Pairs<C>& a, int m, int ks) {
  return make_uint4(a[m][2 * ks][0], a[m][2 * ks][1], a[m][2 * ks + 1][0], a[m][2 * ks + 1][1]);
}
template <class C>
__device__ __forceinline__ void pack_pairs(const Frag<C>& x, Pairs<C>& p) {
#pragma unroll
  for (int m = 0; m < C::MT; ++m)
#pragma unroll
    for (int nt = 0; nt < C::NT; ++nt)
#pragma unroll
      for (int h = 0; h < 2; ++h) p[m][nt][h] = pack_bf16(x[m][nt][2 * h], x[m][nt][2 * h + 1]);
}

// d += A b on the tensor cores, in the path's type.
template <class C>
__device__ __forceinline__ void mma(float (&d)[4], const uint4& A, const uint2& b) {
  if constexpr (C::kTf32) mma_tf32(d, A.x, A.y, A.z, A.w, b.x, b.y);
  else mma_bf16(d, A.x, A.y, A.z, A.w, b.x, b.y);
}

// CS = 2: a warp pair (w, w ^ 1: the same rows, the two column halves) swaps the A fragments of
// its halves through shared memory, each lane with the same lane of its partner (both hold the
// same rows and column offsets within their halves). Double-buffered, so one barrier of the pair
// per product suffices: a buffer is rewritten two products later, after the partner has passed
// the next barrier and so has read it.
template <class C>
struct Exchange {
  uint4* base;  // [2][NW][MT][KSW][32]
  int parity = 0;
  __device__ __forceinline__ uint4* slot(int w, int m, int ks) const {
    return base + (((parity * C::NW + w) * C::MT + m) * C::KSW + ks) * 32 + (threadIdx.x & 31);
  }
  __device__ __forceinline__ void put(const Frag<C>& a, const Lane& l) const {
#pragma unroll
    for (int m = 0; m < C::MT; ++m)
#pragma unroll
      for (int ks = 0; ks < C::KSW; ++ks) *slot(l.w, m, ks) = a_frag<C>(a, m, ks);
  }
  __device__ __forceinline__ void get(uint4 (&theirs)[C::MT][C::KSW], const Lane& l) {
    asm volatile("bar.sync %0, 64;" ::"r"(1 + row_warp<C>(l)) : "memory");
#pragma unroll
    for (int m = 0; m < C::MT; ++m)
#pragma unroll
      for (int ks = 0; ks < C::KSW; ++ks) theirs[m][ks] = *slot(l.w ^ 1, m, ks);
    parity ^= 1;
  }
};

// out += a B over the warp's rows. Tensor path: a comes from registers (CS = 2: the partner's
// half through `x`, after the products of the warp's own half). Exact path: a comes from
// `a_rows` (the same values, stored by the caller at the warp's rows of a stride-LD buffer).
template <class C, class AOp, class BOp>
__device__ __forceinline__ void mul(Frag<C>& out, const AOp& a, const BOp& B,
                                    const typename C::T* a_rows, const Lane& l,
                                    Exchange<C>* x = nullptr) {
  if constexpr (C::kExact) {
#pragma unroll
    for (int l4 = 0; l4 < C::V / 4; ++l4) {
      float4 av[C::MT][2];
#pragma unroll
      for (int m = 0; m < C::MT; ++m)
#pragma unroll
        for (int h = 0; h < 2; ++h)
          av[m][h] = *reinterpret_cast<const float4*>(a_rows + row_of<C>(l, m, h) * C::LD + 4 * l4);
#pragma unroll
      for (int s = 0; s < 4; ++s)
#pragma unroll
        for (int nt = 0; nt < C::NT; ++nt) {
          const float2 b =
              *reinterpret_cast<const float2*>(B.mat_smem + (4 * l4 + s) * C::V + col_of<C>(l, nt));
#pragma unroll
          for (int m = 0; m < C::MT; ++m)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              const float x = s == 0 ? av[m][h].x : s == 1 ? av[m][h].y : s == 2 ? av[m][h].z : av[m][h].w;
              out[m][nt][2 * h] = fmaf(x, b.x, out[m][nt][2 * h]);
              out[m][nt][2 * h + 1] = fmaf(x, b.y, out[m][nt][2 * h + 1]);
            }
        }
    }
  } else {
    // The warp's k-steps ks0 .. ks0 + KSW (BOperand::frag), A fragments af(m, ks), ks < KSW.
    auto products = [&](int ks0, auto af) {
#pragma unroll
      for (int m = 0; m < C::MT; ++m)
#pragma unroll
        for (int ks = 0; ks < C::KSW; ++ks) {
          const uint4 A = af(m, ks);
#pragma unroll
          for (int nt = 0; nt < C::NT; ++nt) {
            mma<C>(out[m][nt], A, B.frag(ks0 + ks, nt));
          }
        }
    };
    if constexpr (C::CS > 1) x->put(a, l);
    products(0, [&](int m, int ks) { return a_frag<C>(a, m, ks); });
    if constexpr (C::CS > 1) {
      uint4 theirs[C::MT][C::KSW];
      x->get(theirs, l);
      products(C::KSW, [&](int m, int ks) { return theirs[m][ks]; });
    }
  }
}

// One asynchronous global -> shared copy of kBytes (4 or 16); an invalid one writes zeros.
template <int kBytes>
__device__ __forceinline__ void cp_async(void* dst, const void* src, bool valid) {
  const uint32_t d = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  if constexpr (kBytes == 16)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(d), "l"(src), "r"(valid ? 16 : 0));
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(d), "l"(src), "r"(valid ? 4 : 0));
}

// Inputs of a tile of P steps, staged in shared memory in their own type T by cp.async (no
// registers held while the tile computes): q[P][K], k[P][K], v[P][V], dy[P][V] (backward only),
// then f[P] in fp32 (one element per step is too small for cp.async; it goes through a register).
// Copies are 16 bytes wide where every row starts 16-byte aligned (a.copy16, checked on the
// host), else 4 bytes, so bf16 rows must start at even elements (also checked on the host).
// kUnrolled: each thread's copies as straight-line code rather than a loop, which ptxas can
// then schedule among the steps' work: faster for the bf16 forward (more so at lm400m with the
// copies issued inside the tile's first step), slower for the tf32 forward and for the backward
// (results/kernels/NOTES.md).
template <class C, bool kGrads, int P = C::P, bool kUnrolled = false>
struct Stage {
  using T = typename C::T;
  static constexpr int oQ = 0, oK = P * C::K, oV = 2 * P * C::K, oDy = oV + P * C::V,
                       kTElems = oDy + (kGrads ? P * C::V : 0);
  static constexpr int kFOffset = (kTElems * static_cast<int>(sizeof(T)) + 15) / 16 * 16;
  static constexpr int kBytes = kFOffset + (P * 4 + 15) / 16 * 16;  // one buffer
  static_assert(P <= C::kThreads, "one thread stages each step's f");
  T f_reg;

  // Copies rows [t0, t0 + P) of one input (kLen elements per row, `step` apart) to dst[P][kLen].
  template <int kBytes, int kLen>
  __device__ __forceinline__ static void rows(T* dst, const T* src, int64_t step, int64_t t0,
                                              int64_t S, const Lane& l) {
    constexpr int E = kBytes / static_cast<int>(sizeof(T)), kPerRow = kLen / E, kCopies = P * kPerRow;
    auto copy = [&](int c) {
      const int s = c / kPerRow, e = c % kPerRow * E;
      const bool valid = t0 + s < S;
      cp_async<kBytes>(dst + s * kLen + e, valid ? src + (t0 + s) * step + e : src, valid);
    };
    if constexpr (kUnrolled) {
#pragma unroll
      for (int i = 0; i < (kCopies + C::kBlockThreads - 1) / C::kBlockThreads; ++i)
        if (l.tid + i * C::kBlockThreads < kCopies) copy(l.tid + i * C::kBlockThreads);
    } else {
#pragma unroll 1
      for (int c = l.tid; c < kCopies; c += C::kBlockThreads) copy(c);
    }
  }
  template <int kBytes>
  __device__ __forceinline__ void copies(T* dst, const RecurrenceArgs<T>& a, const T* q, const T* k,
                                         const T* v, const T* dy, int64_t t0, bool need_q, const Lane& l) {
    if (need_q) rows<kBytes, C::K>(dst + oQ, q, a.q.ss, t0, a.S, l);
    rows<kBytes, C::K>(dst + oK, k, a.k.ss, t0, a.S, l);
    rows<kBytes, C::V>(dst + oV, v, a.v.ss, t0, a.S, l);
    if (kGrads && need_q) rows<kBytes, C::V>(dst + oDy, dy, a.dy.ss, t0, a.S, l);
  }

  // Starts the copies of steps [t0, t0 + P); steps past S read as zeros. q and dy are copied only
  // when needed (the backward's pass 1 reads neither); otherwise the tile holds stale ones.
  __device__ void load(unsigned char* buf, const RecurrenceArgs<T>& a, const T* q, const T* k,
                       const T* v, const T* f, const T* dy, int64_t t0, bool need_q, const Lane& l) {
    T* dst = reinterpret_cast<T*>(buf);
    if (a.copy16) copies<16>(dst, a, q, k, v, dy, t0, need_q, l);
    else copies<4>(dst, a, q, k, v, dy, t0, need_q, l);
    asm volatile("cp.async.commit_group;");
    if (l.tid < P) f_reg = t0 + l.tid < a.S ? f[(t0 + l.tid) * a.f.ss] : from_float<T>(0.f);
  }
  // Completes this thread's part of the tile; a barrier must follow before anyone reads it.
  __device__ void finish(unsigned char* buf, const Lane& l) const {
    asm volatile("cp.async.wait_all;" ::: "memory");
    if (l.tid < P) reinterpret_cast<float*>(buf + kFOffset)[l.tid] = to_float(f_reg);
  }
};

// Step s of a tile staged by St.
template <class C, class St>
struct StepIn {
  const typename C::T *q, *k, *v, *dy;
  float f;
  __device__ StepIn(const unsigned char* buf, int s) {
    const auto* t = reinterpret_cast<const typename C::T*>(buf);
    q = t + St::oQ + s * C::K;
    k = t + St::oK + s * C::K;
    v = t + St::oV + s * C::V;
    dy = t + St::oDy + s * C::V;
    f = reinterpret_cast<const float*>(buf + St::kFOffset)[s];
  }
};

// bf16 inputs: acc = k v^T over the warp's rows on the tensor cores, as the product of k in
// column 0 of A and v in row 0 of B (exact: the products of bf16 values fit fp32). It does not
// depend on the state, so it issues ahead of the step's H W, and it spares one FMA per element.
template <class C, class In>
__device__ __forceinline__ void outer_kv(Frag<C>& acc, const In& in, const Lane& l) {
  const auto* k16 = reinterpret_cast<const uint16_t*>(in.k);
  const auto* v16 = reinterpret_cast<const uint16_t*>(in.v);
  // A fragment (rows g, g + 8; cols 2j, 2j + 1) and B fragment (rows 2j, 2j + 1; col g): the
  // low half of a register is the lower index, so a zero-extended element at j = 0 is (x, 0).
  uint32_t b[C::NT];
#pragma unroll
  for (int nt = 0; nt < C::NT; ++nt)
    b[nt] = l.j == 0 ? v16[col_base<C>(l) + 8 * nt + l.g] : 0u;
#pragma unroll
  for (int m = 0; m < C::MT; ++m) {
    const uint32_t a0 = l.j == 0 ? k16[row_of<C>(l, m, 0)] : 0u;
    const uint32_t a1 = l.j == 0 ? k16[row_of<C>(l, m, 1)] : 0u;
#pragma unroll
    for (int nt = 0; nt < C::NT; ++nt) mma_bf16_zero(acc[m][nt], a0, a1, 0u, 0u, b[nt], 0u);
  }
}

// x += r c^T over the warp's rows (r: K entries, c: V entries).
template <class C>
__device__ __forceinline__ void add_outer(Frag<C>& x, const typename C::T* r, const typename C::T* c,
                                          const Lane& l) {
#pragma unroll
  for (int m = 0; m < C::MT; ++m)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const float rr = to_float(r[row_of<C>(l, m, hh)]);
#pragma unroll
      for (int nt = 0; nt < C::NT; ++nt) {
        const float2 cc = load_pair(c + col_of<C>(l, nt));
        x[m][nt][2 * hh] = fmaf(rr, cc.x, x[m][nt][2 * hh]);
        x[m][nt][2 * hh + 1] = fmaf(rr, cc.y, x[m][nt][2 * hh + 1]);
      }
    }
}

// acc = h W + k v^T over the warp's rows: the candidate's pre-activation, shared by the forward
// step and the backward's reverse step (which recomputes it), so both round it alike. The exact
// path multiplies h from `rows`, where the caller stored it. bf16: k v^T first, on the tensor
// cores, since it does not depend on the state; fp32: added to the product by FMA (starting the
// product from k v^T instead made the tf32 forward 4% slower).
template <class C, class AOp, class In, class BOp>
__device__ __forceinline__ void preactivation(Frag<C>& acc, const AOp& h, const BOp& W,
                                              const In& in, const typename C::T* rows, const Lane& l,
                                              Exchange<C>* x = nullptr) {
  constexpr bool kKvOnTensorCores = !C::kExact && !C::kTf32;
  if constexpr (kKvOnTensorCores) {
    outer_kv<C>(acc, in, l);
  } else {
    for_each_elem<C>([&](int m, int nt, int i) { acc[m][nt][i] = 0.f; });
  }
  mul<C>(acc, h, W, rows, l, x);
  if constexpr (!kKvOnTensorCores) add_outer<C>(acc, in.k, in.v, l);
}

// h <- f h + (1 - f) Z, Z = tanh(acc), acc the step's pre-activation, which Z replaces.
template <class C>
__device__ __forceinline__ void gate(Frag<C>& h, Frag<C>& acc, float f) {
  for_each_elem<C>([&](int m, int nt, int i) {
    const float z = tanh_<C::kExact>(acc[m][nt][i]);
    h[m][nt][i] = fmaf(f, h[m][nt][i] - z, z);
    acc[m][nt][i] = z;
  });
}

// One forward step on the warp's rows: h <- f h + (1 - f) tanh(h W + k v^T), the product from
// `a`: h, or its bf16 pairs where the caller keeps them (the backward's pass 2). When `rows` is
// given, h_{t-1} is stored there first (the exact path multiplies from it; the backward keeps it),
// and when `z_rows` is, the step's Z = tanh(h W + k v^T) is stored there in fp16.
template <class C, class AOp, class In, class BOp>
__device__ __forceinline__ void advance(Frag<C>& h, const AOp& a, const BOp& W, const In& in,
                                        typename C::T* rows, const Lane& l, Exchange<C>* x = nullptr,
                                        __half* z_rows = nullptr) {
  if (rows) {
    __syncwarp();
    store_frag<C>(rows, C::LD, a, l);
    __syncwarp();
  }
  Frag<C> acc;
  preactivation<C>(acc, a, W, in, rows, l, x);
  gate<C>(h, acc, in.f);
  if (z_rows) store_frag<C>(z_rows, C::LD, acc, l);
}

// Per column c of the lane's pairs (col_of): sum over the lane's rows of x[r][c] * wr[r].
template <class C>
__device__ __forceinline__ void lane_column_sums(const Frag<C>& x, const typename C::T* wr,
                                                 float (&s)[C::NT][2], const Lane& l) {
  float w[C::MT][2];
#pragma unroll
  for (int m = 0; m < C::MT; ++m)
#pragma unroll
    for (int h = 0; h < 2; ++h) w[m][h] = to_float(wr[row_of<C>(l, m, h)]);
#pragma unroll
  for (int nt = 0; nt < C::NT; ++nt)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float acc = 0.f;
#pragma unroll
      for (int m = 0; m < C::MT; ++m)
#pragma unroll
        for (int h = 0; h < 2; ++h) acc = fmaf(w[m][h], x[m][nt][2 * h + e], acc);
      s[nt][e] = acc;
    }
}
// Per column c: sum over the warp's rows of x[r][c] * wr[r], complete in lanes 0..3. x_rows holds
// x (rounded to T) at the warp's rows, row stride LD. bf16: the product of wr in every row of A
// and x_rows as B (ldmatrix, transposed), each row of which then holds the sums: MT NT mma
// instead of 4 MT NT FMAs and three shuffle levels.
template <class C>
__device__ __forceinline__ void column_sums(const Frag<C>& x, const typename C::T* x_rows,
                                            const typename C::T* wr, float (&s)[C::NT][2], const Lane& l) {
  if constexpr (C::kExact || C::kTf32) {
    lane_column_sums<C>(x, wr, s, l);
#pragma unroll
    for (int nt = 0; nt < C::NT; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) s[nt][e] = butterfly_sum<4, 16>(s[nt][e]);
  } else {
    static_assert(C::CS == 1 && C::NT % 2 == 0, "column sums over whole rows, n-tiles in pairs");
    const int lane = l.tid & 31, r0 = row_warp<C>(l) * C::kRows;
    float acc[C::NT][4] = {};
#pragma unroll
    for (int m = 0; m < C::MT; ++m) {
      // A rows alike: (2j, 2j + 1) and (2j + 8, 2j + 9) of the m-tile's 16 rows
      const auto* w = reinterpret_cast<const uint32_t*>(wr + r0 + 16 * m + 2 * l.j);
      const uint4 A = make_uint4(w[0], w[0], w[4], w[4]);
      const typename C::T* row = x_rows + (r0 + 16 * m + (lane & 7) + 8 * ((lane >> 3) & 1)) * C::LD;
#pragma unroll
      for (int nt = 0; nt < C::NT; nt += 2) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, row + 8 * (nt + (lane >> 4)));
        mma<C>(acc[nt], A, make_uint2(b[0], b[1]));
        mma<C>(acc[nt + 1], A, make_uint2(b[2], b[3]));
      }
    }
#pragma unroll
    for (int nt = 0; nt < C::NT; ++nt) s[nt][0] = acc[nt][0], s[nt][1] = acc[nt][1];
  }
}
// The lane's column sums, unreduced, into row 8 r + g of `part` (row stride ld, r the warp's
// row block): summing the 8 NWR rows later, once per tile, costs less than shuffles every step.
template <class C>
__device__ __forceinline__ void column_partials(const Frag<C>& x, const typename C::T* wr,
                                                float* part, int ld, const Lane& l) {
  float s[C::NT][2];
  lane_column_sums<C>(x, wr, s, l);
#pragma unroll
  for (int nt = 0; nt < C::NT; ++nt)
    *reinterpret_cast<float2*>(part + (8 * row_warp<C>(l) + l.g) * ld + col_of<C>(l, nt)) =
        make_float2(s[nt][0], s[nt][1]);
}
// Per row r: sum over columns of x[r][c] * wc[c], complete in the lanes with j == 0. Tensor path:
// the product of x's A fragments (x rounded to the product's type, as an operand of H W or dA W^T
// is; x may be given as its bf16 pairs) and wc in all 8 columns of B, each column of which then
// holds the sums: MT KS mma instead of 4 MT NT FMAs and two shuffle levels.
template <class C, class AOp>
__device__ __forceinline__ void row_sums(const AOp& x, const typename C::T* wc,
                                         float (&s)[C::MT][2], const Lane& l) {
  static_assert(C::CS == 1, "row sums over whole rows");
  if constexpr (C::kExact) {
    float2 w[C::NT];
#pragma unroll
    for (int nt = 0; nt < C::NT; ++nt) w[nt] = load_pair(wc + col_of<C>(l, nt));
#pragma unroll
    for (int m = 0; m < C::MT; ++m)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float acc = 0.f;
#pragma unroll
        for (int nt = 0; nt < C::NT; ++nt)
          acc = fmaf(x[m][nt][2 * h], w[nt].x, fmaf(x[m][nt][2 * h + 1], w[nt].y, acc));
        s[m][h] = butterfly_sum<1, 2>(acc);
      }
  } else {
    float acc[C::MT][4] = {};
#pragma unroll
    for (int ks = 0; ks < C::KS; ++ks) {
      // B rows (k index) as a_frag orders the columns: tf32 j, j + 4 <-> 8 ks + 2j, + 1; bf16
      // 2j, 2j + 1 and 2j + 8, 2j + 9 <-> 16 ks + the same.
      uint2 b;
      if constexpr (C::kTf32) {
        const float2 p = load_pair(wc + 8 * ks + 2 * l.j);
        b = make_uint2(to_tf32(p.x), to_tf32(p.y));
      } else {
        const auto* w = reinterpret_cast<const uint32_t*>(wc + 16 * ks + 2 * l.j);
        b = make_uint2(w[0], w[4]);
      }
#pragma unroll
      for (int m = 0; m < C::MT; ++m) mma<C>(acc[m], a_frag<C>(x, m, ks), b);
    }
#pragma unroll
    for (int m = 0; m < C::MT; ++m) s[m][0] = acc[m][0], s[m][1] = acc[m][2];
  }
}

template <class C>
struct ForwardSmem {
  using St = Stage<C, false, C::PF, std::is_same_v<typename C::T, __nv_bfloat16>>;
  static constexpr int kYRows = 8 * C::NWR, kYLd = C::V + 8;  // y partials of a step: row (r, g)
  static constexpr int kYStep = kYRows * kYLd;
  static constexpr int oStage = 0;                                       // 2 Stage buffers
  static constexpr int oY = oStage + 2 * St::kBytes;  // float [kYBuffers][PF][kYRows][kYLd]
  static constexpr int oRows = oY + C::kYBuffers * C::PF * kYStep * 4;   // T [K][LD], exact only
  static constexpr int oB = oRows + (C::kExact ? C::K * C::LD * 4 : 0);  // BOperand
  static constexpr int oX = oB + BOperand<C, C::kFwdBInRegs>::smem_bytes();  // Exchange
  static constexpr int kBytes = oX + C::kExchangeBytes;
};

template <class C>
__global__ void __launch_bounds__(C::kBlockThreads, C::kMinBlocks) fused_forward_kernel(const RecurrenceArgs<typename C::T> a) {
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
  // y of the tile from step t0: its partials summed over rows, one step-column element per
  // thread and slice. With two buffers of partials, a full tile's sums are deferred into the
  // next tile's steps, a slice a step: those steps are bound by their dependent chain and leave
  // issue slots free, whereas after the barrier the sums sat on every warp's path (faster at
  // lm400m and wide).
  auto sum_y = [&](int64_t t0, int steps, const float* part, int slice) {
    const int e = l.tid + slice * C::kBlockThreads;
    if (e >= steps * C::V) return;
    const int s = e / C::V, c = e % C::V;
    const float* p = part + s * L::kYStep + c;
    float sum = 0.f;
#pragma unroll
    for (int r = 0; r < L::kYRows; ++r) sum += p[r * L::kYLd];
    y[(t0 + s) * y_step + c] = from_float<T>(sum);
  };
  constexpr int kSlices = (PF * C::V + C::kBlockThreads - 1) / C::kBlockThreads;
  constexpr bool kDeferY = C::kYBuffers == 2 && kSlices <= PF;  // more a step spilled (K 16, V 64)
  int64_t deferred_t0 = 0;
  const float* deferred = nullptr;  // the partials of the full tile from deferred_t0, not yet summed
  auto sum_deferred = [&](int slice) {
    if (kDeferY && deferred) sum_y(deferred_t0, PF, deferred, slice);
  };

  const int64_t tiles = (S + PF - 1) / PF;
  for (int64_t it = 0; it < tiles; ++it) {
    const int64_t t0 = it * PF;
    const int buf = it & 1;
    unsigned char* next = stage + (buf ^ 1) * St::kBytes;
    // The next tile's copies: with k v^T a step ahead, issued inside this tile's first step (run
    // 43: lm400m 1.64 -> 1.58 ms); with the columns split (wide) ahead of the steps, as inside
    // they took 0.866 -> 0.902.
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
      for (int slice = 0; slice < kSlices; ++slice) sum_y(t0, steps, ypart, slice);
    }
    // With one buffer, the partials are read before the next tile overwrites them.
    if (C::kYBuffers == 1 && it + 1 < tiles) __syncthreads();
  }
  store_state<C>(a.h_final + chain * C::K * C::V, h, l);
}

// The backward's order of tiles: per chunk (last first), pass 1 over tiles 0 .. n-2, then pass 2
// over tiles n-1 .. 0.
struct Tile {
  int64_t chunk = 0, sub = 0;
  bool grads = false, valid = true;
};
template <class C>
__device__ __forceinline__ int64_t tiles_in_chunk(const RecurrenceArgs<typename C::T>& a, int64_t chunk) {
  const int64_t len = a.S - chunk * a.C < a.C ? a.S - chunk * a.C : a.C;
  return (len + C::P - 1) / C::P;
}
template <class C>
__device__ __forceinline__ Tile chunk_first_tile(const RecurrenceArgs<typename C::T>& a, int64_t chunk) {
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
  static constexpr int kBytes = oWt + BOperand<C>::smem_bytes();
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
          const typename C::T* brow = ds + (k0 + (lane & 7) + 8 * ((lane >> 3) & 1)) * C::LD + 8 * nt0;
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

template <class C>
__global__ void __launch_bounds__(C::kBlockThreads, C::kMinBlocks) fused_backward_kernel(const RecurrenceArgs<typename C::T> a) {
  // Split columns (warp pairs swapping halves of both products' A operands, P 4 to make room)
  // made wide's backward slower, 6.8 -> 7.2 ms forward+backward.
  static_assert(C::CS == 1, "the backward keeps whole rows in a warp");
  using T = typename C::T;
  using L = BackwardSmem<C>;
  using St = typename L::St;
  constexpr int kLag = L::kLag;
  extern __shared__ __align__(16) unsigned char smem[];
  float* dWs = reinterpret_cast<float*>(smem + L::oDw);
  // Gradients that go out after round r's barrier: without recompute warps, dq of the tile
  // recomputed in round r and dk of the tile reversed in it (grad_rows(0 or 1, r): [P][K]), and
  // with several warps the dv and df partials of the reversed tile ([P][NW][V], [P][NW]).
  auto grad_rows = [&](int which, unsigned r) {
    return reinterpret_cast<float*>(smem + L::oGradRows) + (r % L::kRowBufs * 2 + which) * C::P * C::K;
  };
  auto dv_parts = [&](unsigned r) { return reinterpret_cast<float*>(smem + L::oDv) + (r & 1) * C::P * C::NW * C::V; };
  auto df_parts = [&](unsigned r) { return reinterpret_cast<float*>(smem + L::oDf) + (r & 1) * C::P * C::NW; };
  constexpr int kStep = C::K * C::LD;
  auto stage = [&](unsigned round) { return smem + L::oStage + round % L::kStages * St::kBytes; };
  auto states = [&](unsigned round) {
    return reinterpret_cast<T*>(smem + L::oStates) + round % L::kSlots * C::P * kStep;
  };
  auto dAs = [&](unsigned round) {
    return reinterpret_cast<T*>(smem + L::oDa) + round % L::kSlots * C::P * kStep;
  };
  // With recompute warps, pass 2's forward leaves each step's Z in fp16 where the reverse step
  // will write that step's dA (the slot of the next round), and the reverse step reads it instead
  // of recomputing H W + k v^T and its tanh on the critical path. Z lies in (-1, 1), where fp16
  // keeps 11 bits, about tanh.approx's own error (bf16's 8 doubled df's error). bf16 only: a
  // same-sized element, so each lane overwrites just the Z it has read. It shortens the wide
  // forward+backward mostly with a checkpoint every 8 steps: at the default interval the
  // recompute warps, busy with pass 1, pass 2's forward and dW, are the bound.
  constexpr bool kZKept = kLag && sizeof(T) == 2;
  auto z_rows = [&](unsigned round, int s) { return reinterpret_cast<__half*>(dAs(round) + s * kStep); };
  // Roles: with recompute warps, warps [NW, 2 NW) recompute and [0, NW) reverse; `l` numbers a
  // thread within its group, `lb` within the block (block-wide loops).
  const Lane lb;
  const bool recomputes = kLag == 0 || lb.w >= C::NW, reverses = kLag == 0 || lb.w < C::NW;
  const Lane l = kLag && recomputes ? lb.in_group(C::NW) : lb;
  // The barrier of one group of warps (with recompute warps: theirs).
  auto group_sync = [] {
    if constexpr (kLag) asm volatile("bar.sync 1, %0;" ::"n"(C::kThreads) : "memory");
    else if constexpr (C::NW > 1) __syncthreads();
    else __syncwarp();
  };
  const int64_t chain = blockIdx.x, b = chain / a.N, n = chain % a.N, S = a.S, N = a.N;
  const int64_t hw = n / (N / a.Nw);
  const T *q = a.q.chain(b, n, N), *k = a.k.chain(b, n, N), *v = a.v.chain(b, n, N),
          *f = a.f.chain(b, n, N), *dy = a.dy.chain(b, n, N);
  const auto dq_out = a.dq.chain(b, n, N, S, C::K), dk_out = a.dk.chain(b, n, N, S, C::K),
             dv_out = a.dv.chain(b, n, N, S, C::V), df_out = a.df.chain(b, n, N, S, 1);

  // dq or dk (which 0 or 1) of step t0 + s from the lanes that hold them whole. Without
  // recompute warps into the round's buffer for the flush after its barrier: these lanes are a
  // quarter of each warp, and their own puts (address arithmetic and the shared-head branch per
  // element) cost the single group more than its share of the flush (lm400m forward+backward
  // 12.2 -> 11.3 ms). With recompute warps straight out: the flush would sit on the reversing
  // warps' critical path (wide 6.18 -> 6.25 ms).
  auto put_row_sums = [&](int which, unsigned r, int64_t t0, int s, const float (&x)[C::MT][2]) {
    if (l.j != 0) return;
#pragma unroll
    for (int m = 0; m < C::MT; ++m)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        if constexpr (kLag) (which ? dk_out : dq_out).put(t0 + s, row_of<C>(l, m, hh), x[m][hh]);
        else grad_rows(which, r)[s * C::K + row_of<C>(l, m, hh)] = x[m][hh];
      }
  };

  BOperand<C> W, Wt;
  W.init(a.W + hw * C::V * C::V, false, smem + L::oW, lb);
  Wt.init(a.W + hw * C::V * C::V, true, smem + L::oWt, lb);
  for (int e = lb.tid; e < C::V * C::V; e += C::kBlockThreads) dWs[e] = 0.f;

  Frag<C> carry, h;
  if (reverses)
    load_state<C>(a.dh_final ? a.dh_final + chain * C::K * C::V : static_cast<const T*>(nullptr), carry, l);
  float4* scratch = reinterpret_cast<float4*>(a.scratch) + chain * (a.C / C::P) * C::MT * C::NT * C::kThreads;
  // Tile sub's start state, K V floats in fragment order (float4 i of thread tid at i kThreads + tid).
  auto scratch_tile = [&](int64_t sub) { return scratch + sub * C::MT * C::NT * C::kThreads; };
  // A tile's start state is loaded at a chunk's first tile (its checkpoint, or h0) and at the
  // grads tiles whose start pass 1 saved to scratch; elsewhere it carries over in h (pass 1's
  // tiles follow one another, and pass 1 ends where the chunk's last tile starts).
  auto loads_start = [&](const Tile& t) {
    return t.sub == 0 || (t.grads && t.sub + 1 < tiles_in_chunk<C>(a, t.chunk));
  };
  const T* h0 = a.h0 ? a.h0 + chain * C::K * C::V : nullptr;
  auto checkpoint = [&](int64_t chunk) { return a.ck + (chain * a.nck + chunk - 1) * C::K * C::V; };
  auto load_start = [&](const Tile& t) {
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
  };
  // The next tile's start state is prefetched into L1 a tile ahead, which hides the latency of
  // its load without holding registers.
  auto prefetch_start = [&](const Tile& t) {
    const void* p = t.sub > 0 ? static_cast<const void*>(scratch_tile(t.sub))
                    : t.chunk > 0 ? static_cast<const void*>(checkpoint(t.chunk)) : h0;
    const int bytes = C::K * C::V * (t.sub == 0 && t.chunk == 0 ? static_cast<int>(sizeof(T)) : 4);
    if (p)
      for (int off = 128 * l.tid; off < bytes; off += 128 * C::kThreads)
        prefetch_l1(static_cast<const char*>(p) + off);
  };
  auto tile_t0 = [&](const Tile& t) { return t.chunk * a.C + t.sub * C::P; };
  auto tile_steps = [&](const Tile& t) {
    const int64_t t0 = tile_t0(t);
    return static_cast<int>(S - t0 < C::P ? S - t0 : C::P);
  };

  // Round r's tile t, from its start: pass 1 carries h through it and keeps where the next tile
  // starts for pass 2 (but the chunk's last tile, which starts from h); pass 2's forward stores
  // its states to the round's slot for the reverse step, with dq_t = H_t dy_t on the way.
  auto recompute = [&](const Tile& t, unsigned r) {
    const int64_t t0 = tile_t0(t);
    const int steps = tile_steps(t);
    const unsigned char* sb = stage(r);
    T* rows = states(r);
    if (loads_start(t)) load_start(t);
    if (!t.grads) {
      for (int s = 0; s < steps; ++s)
        advance<C>(h, h, W, StepIn<C, St>(sb, s), C::kExact ? rows : nullptr, l);
      if (t.sub + 2 < tiles_in_chunk<C>(a, t.chunk))
#pragma unroll
        for (int m = 0; m < C::MT; ++m)
#pragma unroll
          for (int nt = 0; nt < C::NT; ++nt)
            scratch_tile(t.sub + 1)[(m * C::NT + nt) * C::kThreads + l.tid] =
                make_float4(h[m][nt][0], h[m][nt][1], h[m][nt][2], h[m][nt][3]);
      return;
    }
    // a: h, or (bf16) its pairs, each state packed once for its store, its product and dq
    // (ptxas shares none of the three packings); repack: a after h's step.
    auto steps_from = [&](const auto& a, auto repack) {
      for (int s = 0; s < steps; ++s) {
        const StepIn<C, St> in(sb, s);
        advance<C>(h, a, W, in, rows + s * kStep, l, nullptr, kZKept ? z_rows(r + 1, s) : nullptr);
        repack();
        float dq[C::MT][2];
        row_sums<C>(a, in.dy, dq, l);
        put_row_sums(0, r, t0, s, dq);
      }
    };
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      Pairs<C> hb;
      pack_pairs<C>(h, hb);
      steps_from(hb, [&] { pack_pairs<C>(h, hb); });
    } else {
      steps_from(h, [] {});
    }
  };

  // Round r's reverse recurrence over grads tile t, which round rr recomputed: dA to round r's
  // slot, dv and df partials (several warps) to parity r & 1 of their buffers, summed after the
  // round's barrier.
  auto reverse = [&](const Tile& t, unsigned rr, unsigned r) {
    const int64_t t0 = tile_t0(t);
    const int steps = tile_steps(t);
    const unsigned char* sb = stage(rr);
    const T* rows = states(rr);
    T* dA_rows = dAs(r);
    float* dvp = dv_parts(r);
    float* dfp = df_parts(r);
    for (int s = steps - 1; s >= 0; --s) {
      const StepIn<C, St> in(sb, s);
      const float fs = in.f;
      Frag<C>& G = carry;  // G overwrites carry: carry_{t+1} is not needed past this point
      add_outer<C>(G, in.q, in.dy, l);
      if (a.clip > 0)
        for_each_elem<C>([&](int m, int nt, int i) {
          G[m][nt][i] = fminf(fmaxf(G[m][nt][i], -a.clip), a.clip);
        });
      const T* hrows = rows + s * kStep;
      T* arows = dA_rows + s * kStep;
      Frag<C> dA;  // Z (or before kZKept its pre-activation) goes in dA's registers
      // hp: H_{t-1} as stored; bf16 keeps its pairs, the product's operand as they are, unpacked
      // element by element where df needs them, where registers are not capped (with lm400m's
      // 128, ptxas then moved registers around in pass 1 and dW: 364 -> 350 instructions in this
      // loop, +29 in theirs).
      auto from = [&](const auto& hp) {
        if constexpr (kZKept) load_frag<C>(z_rows(r, s), C::LD, dA, l);
        else preactivation<C>(dA, hp, W, in, hrows, l);
        float df = 0.f;
        for_each_elem<C>([&](int m, int nt, int i) {
          const float z = kZKept ? dA[m][nt][i] : tanh_<C::kExact>(dA[m][nt][i]);
          const float gz = G[m][nt][i];
          df = fmaf(gz, elem<C>(hp, m, nt, i) - z, df);
          dA[m][nt][i] = (1.f - fs) * gz * fmaf(-z, z, 1.f);
        });
        return df;
      };
      std::conditional_t<std::is_same_v<T, __nv_bfloat16> && C::kMinBlocks == 1, Pairs<C>, Frag<C>> hp;
      load_frag<C>(hrows, C::LD, hp, l);
      float df = from(hp);
      __syncwarp();
      store_frag<C>(arows, C::LD, dA, l);
      __syncwarp();
      float dk[C::MT][2], dv[C::NT][2];
      row_sums<C>(dA, in.v, dk, l);
      column_sums<C>(dA, arows, in.k, dv, l);
      df = butterfly_sum<1, 16>(df);
      put_row_sums(1, r, t0, s, dk);
      // dv and df sum over all K rows: one warp has them whole, more add their partials up
      // after the round's barrier.
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
      // carry_t = f G + dA W^T
      for_each_elem<C>([&](int m, int nt, int i) { carry[m][nt][i] = fs * G[m][nt][i]; });
      mul<C>(carry, dA, Wt, arows, l);
    }
  };
  // After the round's barrier, the gradients the round left in shared memory go out, each in
  // one loop over consecutive elements: without recompute warps dq of the recomputed tile and dk
  // of the reversed one, and with several warps dv and df of the reversed one, summed over the
  // warps' partials.
  auto flush = [&](const Tile& recomputed, const Tile& reversed, unsigned r) {
    auto rows_out = [&](const auto& out, const float* rows, const Tile& t) {
      out.template put_tile<C::K, C::kBlockThreads>(tile_t0(t), tile_steps(t), lb.tid,
                                                    [&](int e) { return rows[e]; });
    };
    if constexpr (!kLag) {
      if (recomputed.valid && recomputed.grads) rows_out(dq_out, grad_rows(0, r), recomputed);
      if (reversed.valid && reversed.grads) rows_out(dk_out, grad_rows(1, r), reversed);
    }
    if (!reversed.valid || !reversed.grads) return;
    if constexpr (C::NW > 1) {
      const int64_t t0 = tile_t0(reversed);
      const int steps = tile_steps(reversed);
      const float* dvp = dv_parts(r);
      const float* dfp = df_parts(r);
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
  };

  // t_r, and with recompute warps t_{r - 1} (reversed) and t_{r - 2} (its dW)
  Tile cur = chunk_first_tile<C>(a, (S + a.C - 1) / a.C - 1), prev = cur, prev2 = cur;
  prev.valid = prev2.valid = false;
  St st;
  st.load(stage(0), a, q, k, v, f, dy, tile_t0(cur), cur.grads, lb);
  st.finish(stage(0), lb);
  __syncthreads();
  for (unsigned r = 0;; ++r) {
    const Tile& rev = kLag ? prev : cur;
    const Tile& dwt = kLag ? prev2 : cur;
    Tile nxt;
    nxt.valid = false;
    if (cur.valid) nxt = next_tile<C>(a, cur);
    if (nxt.valid) st.load(stage(r + 1), a, q, k, v, f, dy, tile_t0(nxt), nxt.grads, lb);
    if (recomputes) {
      if (kLag && dwt.valid && dwt.grads) {
        // Its states' slot is the one this round's tile goes to.
        accumulate_dw<C>(states(r - 2), dAs(r - 1), tile_steps(dwt), dWs, l);
        group_sync();
      }
      if (cur.valid) {
        if (nxt.valid && loads_start(nxt)) prefetch_start(nxt);
        recompute(cur, r);
      }
    }
    const bool reversing = rev.valid && rev.grads;
    if (reverses && reversing) {
      reverse(rev, r - kLag, r);
      if (!kLag) {
        group_sync();
        accumulate_dw<C>(states(r), dAs(r), tile_steps(rev), dWs, l);
      }
    }
    if (nxt.valid) st.finish(stage(r + 1), lb);
    __syncthreads();
    flush(cur, rev, r);
    if constexpr (L::kRowBufs == 1) __syncwarp();  // the flush's reads before the next round's writes
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
  for (int e = lb.tid; e < C::V * C::V; e += C::kBlockThreads) atomicAdd(a.dW + hw * C::V * C::V + e, dWs[e]);
  if (a.dh0 && reverses) store_state<C>(a.dh0 + chain * C::K * C::V, carry, l);
}

}  // namespace m2b::kernels::cuda::detail
