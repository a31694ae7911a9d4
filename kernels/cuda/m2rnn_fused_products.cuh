#pragma once
// The products of the fused kernels' steps, a warp's rows times a V x V matrix (W, or W^T): on
// the tensor cores, or in fp32 FMAs for the exact path.
#include <cstdint>

#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/m2rnn_fused_fragments.cuh"

namespace m2b::kernels::cuda::detail {

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
      return make_uint2(to_tf32(at(W, tr, 8 * ks + 2 * j, c)),
                        to_tf32(at(W, tr, 8 * ks + 2 * j + 1, c)));
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
          const uint2 f = make_frag(W, transposed, global_ks(ks), col_warp<C>(l) * C::NT + nt,
                                    threadIdx.x & 31);
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
    else
      return frag_smem[(global_ks(ks) * NTV + col_warp<C>(Lane()) * C::NT + nt) * 32 +
                       (threadIdx.x & 31)];
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
              const float x = s == 0   ? av[m][h].x
                              : s == 1 ? av[m][h].y
                              : s == 2 ? av[m][h].z
                                       : av[m][h].w;
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

}  // namespace m2b::kernels::cuda::detail
