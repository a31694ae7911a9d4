#include "kernels/cuda/recurrence_args.cuh"

#include <algorithm>
#include <type_traits>
#include <utility>

namespace m2b::kernels::cuda::detail {

template <typename T>
RecurrenceArgs<T> forward_args(const M2rnnForward<T>& p) {
  const M2rnnShape& s = p.shape;
  RecurrenceArgs<T> a;
  a.B = s.B;
  a.S = s.S;
  a.N = s.N();
  a.q = {p.q, p.q_stride.b, p.q_stride.s, p.q_stride.h, s.Nq};
  a.k = {p.k, p.k_stride.b, p.k_stride.s, p.k_stride.h, s.Nk};
  a.v = {p.v, p.v_stride.b, p.v_stride.s, p.v_stride.h, s.Nv};
  a.f = {p.f, p.f_stride.b, p.f_stride.s, p.f_stride.h, s.Nf};
  a.W = p.W;
  a.Nw = s.Nw;
  a.h0 = p.h0;
  a.y = p.y;
  a.h_final = p.h_final;
  return a;
}

namespace {

__global__ void convert_kernel(const float* src, __nv_bfloat16* dst, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = __float2bfloat16_rn(src[i]);
}

// Walks the accumulated gradients in one fixed order: fn(out, elements, accumulates).
template <typename T, typename Fn>
void for_each_grad(const M2rnnBackward<T>& p, Fn&& fn) {
  const M2rnnShape& s = p.fwd.shape;
  const int64_t rows = s.B * s.S, N = s.N();
  fn(p.dq, rows * s.Nq * s.K, s.Nq < N);
  fn(p.dk, rows * s.Nk * s.K, s.Nk < N);
  fn(p.dv, rows * s.Nv * s.V, s.Nv < N);
  fn(p.df, rows * s.Nf, s.Nf < N);
  fn(p.dW, s.Nw * s.V * s.V, true);
}

}  // namespace

template <typename T>
size_t grad_workspace_bytes(const M2rnnShape& s) {
  if constexpr (std::is_same_v<T, float>) return 0;
  const int64_t rows = s.B * s.S, N = s.N();
  size_t bytes = align256(s.Nw * s.V * s.V * sizeof(float));
  const std::pair<int64_t, int64_t> fields[] = {{s.Nq, s.K}, {s.Nk, s.K}, {s.Nv, s.V}, {s.Nf, 1}};
  for (const auto& [heads, inner] : fields)
    if (heads < N) bytes += align256(rows * heads * inner * sizeof(float));
  return bytes;
}

template <typename T>
void grad_begin(const M2rnnBackward<T>& p, void* workspace, RecurrenceArgs<T>& a,
                cudaStream_t stream) {
  const M2rnnShape& s = p.fwd.shape;
  char* ws = static_cast<char*>(workspace);
  float* accs[5];
  int i = 0;
  for_each_grad(p, [&](T* out, int64_t elements, bool shared) {
    float* acc = nullptr;
    if (shared) {
      if constexpr (std::is_same_v<T, float>) {
        acc = out;
      } else {
        acc = reinterpret_cast<float*>(ws);
        ws += align256(elements * sizeof(float));
      }
      check_cuda(cudaMemsetAsync(acc, 0, elements * sizeof(float), stream),
                 "m2rnn: zero gradients");
    }
    accs[i++] = acc;
  });
  a.dq = {p.dq, accs[0], s.Nq};
  a.dk = {p.dk, accs[1], s.Nk};
  a.dv = {p.dv, accs[2], s.Nv};
  a.df = {p.df, accs[3], s.Nf};
  a.dW = accs[4];
}

template <typename T>
void grad_finish(const M2rnnBackward<T>& p, const RecurrenceArgs<T>& a, cudaStream_t stream) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const float* accs[5] = {a.dq.acc, a.dk.acc, a.dv.acc, a.df.acc, a.dW};
    int i = 0;
    for_each_grad(p, [&](T* out, int64_t elements, bool) {
      if (const float* acc = accs[i++]) {
        const int blocks = static_cast<int>(std::min<int64_t>((elements + 255) / 256, 4096));
        convert_kernel<<<blocks, 256, 0, stream>>>(acc, out, elements);
        check_cuda(cudaGetLastError(), "m2rnn: convert gradients");
      }
    });
  }
}

template RecurrenceArgs<float> forward_args(const M2rnnForward<float>&);
template RecurrenceArgs<bf16> forward_args(const M2rnnForward<bf16>&);
template size_t grad_workspace_bytes<float>(const M2rnnShape&);
template size_t grad_workspace_bytes<bf16>(const M2rnnShape&);
template void grad_begin(const M2rnnBackward<float>&, void*, RecurrenceArgs<float>&, cudaStream_t);
template void grad_begin(const M2rnnBackward<bf16>&, void*, RecurrenceArgs<bf16>&, cudaStream_t);
template void grad_finish(const M2rnnBackward<float>&, const RecurrenceArgs<float>&, cudaStream_t);
template void grad_finish(const M2rnnBackward<bf16>&, const RecurrenceArgs<bf16>&, cudaStream_t);

}  // namespace m2b::kernels::cuda::detail
