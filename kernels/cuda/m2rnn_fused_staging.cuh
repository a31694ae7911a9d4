#pragma once
// Tiles of steps. The inputs (q, k, v, f, dy) come in tiles of steps (PF in the forward, P in
// the backward), staged in shared memory by the whole block with cp.async: the next tile's
// copies are issued before the current tile's steps run and awaited after them; one barrier per
// tile.
#include <cstdint>

#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/m2rnn_fused_fragments.cuh"
#include "kernels/cuda/recurrence_args.cuh"

namespace m2b::kernels::cuda::detail {

// One asynchronous global -> shared copy of kBytes (4 or 16); an invalid one writes zeros.
template <int kBytes>
__device__ __forceinline__ void cp_async(void* dst, const void* src, bool valid) {
  const uint32_t d = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  if constexpr (kBytes == 16)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(d), "l"(src),
                 "r"(valid ? 16 : 0));
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(d), "l"(src),
                 "r"(valid ? 4 : 0));
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
    constexpr int E = kBytes / static_cast<int>(sizeof(T)), kPerRow = kLen / E,
                  kCopies = P * kPerRow;
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
                                         const T* v, const T* dy, int64_t t0, bool need_q,
                                         const Lane& l) {
    if (need_q) rows<kBytes, C::K>(dst + oQ, q, a.q.ss, t0, a.S, l);
    rows<kBytes, C::K>(dst + oK, k, a.k.ss, t0, a.S, l);
    rows<kBytes, C::V>(dst + oV, v, a.v.ss, t0, a.S, l);
    if (kGrads && need_q) rows<kBytes, C::V>(dst + oDy, dy, a.dy.ss, t0, a.S, l);
  }

  // Starts the copies of steps [t0, t0 + P); steps past S read as zeros. q and dy are copied only
  // when needed (the backward's pass 1 reads neither); otherwise the tile holds stale ones.
  __device__ void load(unsigned char* buf, const RecurrenceArgs<T>& a, const T* q, const T* k,
                       const T* v, const T* f, const T* dy, int64_t t0, bool need_q,
                       const Lane& l) {
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

}  // namespace m2b::kernels::cuda::detail
