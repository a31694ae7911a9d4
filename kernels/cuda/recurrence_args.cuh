#pragma once
// What both CUDA backends pass to their kernels: the inputs as per-chain views, the outputs, and
// where each gradient goes (shared heads sum in fp32, then convert).
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/m2rnn_cuda.h"

namespace m2b::kernels::cuda::detail {

// A (B, S, heads, inner) input with element strides; chain (b, n) reads head n / (N / heads).
template <typename T>
struct SeqIn {
  const T* p = nullptr;
  int64_t sb = 0, ss = 0, sh = 0, heads = 1;
  __device__ const T* chain(int64_t b, int64_t n, int64_t N) const {
    return p + b * sb + n / (N / heads) * sh;
  }
};

// A gradient output (B, S, heads, inner): when heads are shared, chains add into the fp32
// accumulator `acc` (zeroed first), else they store straight into `out`.
template <typename T>
struct GradOut {
  T* out = nullptr;
  float* acc = nullptr;
  int64_t heads = 1;
  // Where chain (b, n) puts its gradients: element i of step t at t * step + i from its base, so
  // that a put costs one multiply-add of indices, not the whole (b, t, head) arithmetic.
  struct Chain {
    T* out;
    float* acc;
    int64_t step;
    __device__ void put(int64_t t, int i, float x) const {
      if (acc) atomicAdd(acc + t * step + i, x);
      else out[t * step + i] = from_float<T>(x);
    }
    // A tile's gradient from shared memory, in one loop per thread: thread `first` of kStride
    // puts elements e = first, first + kStride, .. < steps kLen (element e % kLen of step
    // t0 + e / kLen) as x(e). A thread keeps its element of a row, so its pointer steps by rows,
    // and where the elements go is decided once.
    template <int kLen, int kStride, class X>
    __device__ void put_tile(int64_t t0, int steps, int first, X x) const {
      static_assert(kStride % kLen == 0, "a thread keeps its element of a row");
      const int64_t off = (t0 + first / kLen) * step + first % kLen, jump = kStride / kLen * step;
      const int n = steps * kLen;
      if (acc)
        for (float* p = acc + off; first < n; first += kStride, p += jump) atomicAdd(p, x(first));
      else
        for (T* p = out + off; first < n; first += kStride, p += jump) *p = from_float<T>(x(first));
    }
  };
  __device__ Chain chain(int64_t b, int64_t n, int64_t N, int64_t S, int64_t inner) const {
    const int64_t base = (b * S * heads + n / (N / heads)) * inner;
    return {out ? out + base : nullptr, acc ? acc + base : nullptr, heads * inner};
  }
};

template <typename T>
struct RecurrenceArgs {
  int64_t B = 0, S = 0, N = 0, C = 0, nck = 0;
  SeqIn<T> q, k, v, f, dy;
  const T* W = nullptr;
  int64_t Nw = 1;
  const T* h0 = nullptr;
  T* y = nullptr;
  T* h_final = nullptr;
  float* ck = nullptr;  // fused: checkpoints (B, N, nck, K, V)
  bool copy16 = false;  // fused: every row of q, k, v (and dy) starts 16-byte aligned
  // backward only
  const T* dh_final = nullptr;
  float clip = 0;
  GradOut<T> dq, dk, dv, df;
  float* dW = nullptr;  // fp32 accumulator (Nw, V, V), zeroed first
  T* dh0 = nullptr;
  float* scratch = nullptr;  // fused: tile-start states of the backward's pass 1
};

// The inputs and forward outputs of `p`; backward fields stay empty.
template <typename T>
RecurrenceArgs<T> forward_args(const M2rnnForward<T>& p);

// Gradient destinations of a backward: the fp32 accumulators it needs (dW always; dq, dk, dv,
// df when their heads are shared) live in the outputs themselves for fp32 and in a workspace of
// grad_workspace_bytes for bf16. grad_begin zeroes them and fills a.dq .. a.dW; grad_finish
// converts the bf16 ones into the outputs.
template <typename T>
size_t grad_workspace_bytes(const M2rnnShape& s);
template <typename T>
void grad_begin(const M2rnnBackward<T>& p, void* workspace, RecurrenceArgs<T>& a,
                cudaStream_t stream);
template <typename T>
void grad_finish(const M2rnnBackward<T>& p, const RecurrenceArgs<T>& a, cudaStream_t stream);

inline size_t align256(size_t bytes) { return (bytes + 255) / 256 * 256; }

}  // namespace m2b::kernels::cuda::detail
