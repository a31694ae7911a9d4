#pragma once
// One step of the recurrence over a warp's rows, shared by the forward and the backward's
// recomputation (so that both round alike), and the row and column sums that turn a step's
// state or dA into outputs and gradients.
#include <cstdint>

#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/m2rnn_fused_fragments.cuh"
#include "kernels/cuda/m2rnn_fused_products.cuh"

namespace m2b::kernels::cuda::detail {

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
  for (int nt = 0; nt < C::NT; ++nt) b[nt] = l.j == 0 ? v16[col_base<C>(l) + 8 * nt + l.g] : 0u;
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
__device__ __forceinline__ void add_outer(Frag<C>& x, const typename C::T* r,
                                          const typename C::T* c, const Lane& l) {
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
// product from k v^T instead made the tf32 forward slower).
template <class C, class AOp, class In, class BOp>
__device__ __forceinline__ void preactivation(Frag<C>& acc, const AOp& h, const BOp& W,
                                              const In& in, const typename C::T* rows,
                                              const Lane& l, Exchange<C>* x = nullptr) {
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
                                        typename C::T* rows, const Lane& l,
                                        Exchange<C>* x = nullptr, __half* z_rows = nullptr) {
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
                                            const typename C::T* wr, float (&s)[C::NT][2],
                                            const Lane& l) {
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
      const typename C::T* row =
          x_rows + (r0 + 16 * m + (lane & 7) + 8 * ((lane >> 3) & 1)) * C::LD;
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

}  // namespace m2b::kernels::cuda::detail
