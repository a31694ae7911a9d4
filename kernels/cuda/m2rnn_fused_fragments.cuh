#pragma once
// A warp's rows of a K x V matrix in registers, in the fp32 accumulator layout of the
// tensor-core tiles (m2rnn_fused_traits.cuh), and their moves to and from memory.
#include <cstdint>

#include "kernels/cuda/device_math.cuh"

namespace m2b::kernels::cuda::detail {

template <class C>
using Frag = float[C::MT][C::NT][4];
// bf16: a fragment's values as the pairs a_frag packs (pair h of n-tile nt: elements 2h, 2h + 1),
// where they come packed already (a state read back from shared memory).
template <class C>
using Pairs = uint32_t[C::MT][C::NT][2];

// Thread coordinates inside the block.
struct Lane {
  int tid, w, g, j;
  __device__ Lane()
      : tid(threadIdx.x), w(threadIdx.x >> 5), g((threadIdx.x & 31) >> 2), j(threadIdx.x & 3) {}
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
__device__ __forceinline__ int row_warp(const Lane& l) {
  return l.w / C::CS;
}
template <class C>
__device__ __forceinline__ int col_warp(const Lane& l) {
  return l.w % C::CS;
}
template <class C>
__device__ __forceinline__ int row_of(const Lane& l, int m, int h) {
  return row_warp<C>(l) * C::kRows + 16 * m + l.g + 8 * h;
}
template <class C>
__device__ __forceinline__ int col_base(const Lane& l) {
  return col_warp<C>(l) * (C::V / C::CS);
}
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
__device__ __forceinline__ void store_frag(__nv_bfloat16* base, int ld, const Pairs<C>& x,
                                           const Lane& l) {
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
__device__ __forceinline__ void load_frag(const __nv_bfloat16* base, int ld, Pairs<C>& x,
                                          const Lane& l) {
  for_each_pair<C>(ld, l, [&](int m, int h, int nt, int o) {
    x[m][nt][h] = *reinterpret_cast<const uint32_t*>(base + o);
  });
}
// Element i of n-tile nt of a fragment, held as floats or as bf16 pairs.
template <class C>
__device__ __forceinline__ float elem(const Frag<C>& x, int m, int nt, int i) {
  return x[m][nt][i];
}
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
  for_each_pair<C>(C::V, l, [&](int m, int h, int nt, int o) {
#pragma unroll
    for (int e = 0; e < 2; ++e) x[m][nt][2 * h + e] = src ? to_float<S>(src[o + e]) : 0.f;
  });
}
template <class C, typename S>
__device__ __forceinline__ void store_state(S* dst, const Frag<C>& x, const Lane& l) {
  for_each_pair<C>(C::V, l, [&](int m, int h, int nt, int o) {
#pragma unroll
    for (int e = 0; e < 2; ++e) dst[o + e] = from_float<S>(x[m][nt][2 * h + e]);
  });
}

}  // namespace m2b::kernels::cuda::detail
