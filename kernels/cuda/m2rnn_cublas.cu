// The cuBLAS baseline: the obvious GPU implementation, in fp32 whatever the input type. Every
// step is a strided-batched SGEMM over the B N chains plus one elementwise kernel (one block per
// chain); the forward keeps every state for the backward, which recomputes H_{t-1} W per step
// and adds dA W^T and H_{t-1}^T dA with two more batched GEMMs.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda/recurrence_args.cuh"

namespace m2b::kernels::cuda {

namespace {

using detail::RecurrenceArgs;
using detail::from_float;
using detail::to_float;

constexpr int kThreads = 256;

void cublas_ok(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("m2rnn cublas: ") + what + " failed with status " +
                             std::to_string(static_cast<int>(s)));
}

// fp32 work buffers, each per chain: W (V x V), H W (K x V), carry and dA (K x V), dW (V x V).
struct Buffers {
  float *W, *pre, *carry, *dA, *dW;
  char* grads;
  static size_t bytes(const M2rnnShape& s) {
    const size_t chains = s.B * s.N();
    return detail::align256(chains * (2 * s.V * s.V + 3 * s.K * s.V) * sizeof(float));
  }
  Buffers(const M2rnnShape& s, void* ws) {
    const size_t chains = s.B * s.N(), vv = s.V * s.V, kv = s.K * s.V;
    W = static_cast<float*>(ws);
    pre = W + chains * vv;
    carry = pre + chains * kv;
    dA = carry + chains * kv;
    dW = dA + chains * kv;
    grads = static_cast<char*>(ws) + bytes(s);
  }
};

template <typename T>
__global__ void expand_w(const T* W, float* out, int64_t N, int64_t Nw, int64_t vv) {
  const int64_t chain = blockIdx.x, n = chain % N;
  for (int64_t e = threadIdx.x; e < vv; e += blockDim.x)
    out[chain * vv + e] = to_float(W[n / (N / Nw) * vv + e]);
}

template <typename T>
__global__ void load_h0(const T* h0, float* out, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(gridDim.x) * blockDim.x)
    out[e] = h0 ? to_float(h0[e]) : 0.f;
}

// H_{t+1} = f H_t + (1 - f) tanh(H_t W + k v^T); y_t = q^T H_{t+1}.
template <typename T>
__global__ void forward_step(const RecurrenceArgs<T> a, int K, int V, int64_t t, const float* pre,
                             const float* h, float* h_next) {
  extern __shared__ float hs[];
  const int64_t chain = blockIdx.x, b = chain / a.N, n = chain % a.N, kv = int64_t(K) * V;
  const T *q = a.q.chain(b, n, a.N) + t * a.q.ss, *k = a.k.chain(b, n, a.N) + t * a.k.ss,
          *v = a.v.chain(b, n, a.N) + t * a.v.ss;
  const float f = to_float(a.f.chain(b, n, a.N)[t * a.f.ss]);
  for (int64_t e = threadIdx.x; e < kv; e += blockDim.x) {
    const int64_t i = e / V, c = e % V, x = chain * kv + e;
    const float z = tanhf(pre[x] + to_float(k[i]) * to_float(v[c]));
    hs[e] = h_next[x] = f * h[x] + (1.f - f) * z;
  }
  __syncthreads();
  for (int c = threadIdx.x; c < V; c += blockDim.x) {
    float y = 0.f;
    for (int i = 0; i < K; ++i) y += to_float(q[i]) * hs[i * V + c];
    a.y[((b * a.S + t) * a.N + n) * V + c] = from_float<T>(y);
  }
  if (t == a.S - 1)
    for (int64_t e = threadIdx.x; e < kv; e += blockDim.x)
      a.h_final[chain * kv + e] = from_float<T>(hs[e]);
}

// Given carry = dL/dH_{t+1} from step t+1: G, dq, dk, dv, df of step t; dA to dA_out and f G to
// carry (the GEMMs then add dA W^T to it and H_t^T dA to dW).
template <typename T>
__global__ void backward_step(const RecurrenceArgs<T> a, int K, int V, int64_t t, const float* pre,
                              const float* h, const float* h_next, float* carry, float* dA_out) {
  extern __shared__ float da[];
  __shared__ float df;
  const int64_t chain = blockIdx.x, b = chain / a.N, n = chain % a.N, kv = int64_t(K) * V;
  const int64_t N = a.N, S = a.S;
  const T *q = a.q.chain(b, n, N) + t * a.q.ss, *k = a.k.chain(b, n, N) + t * a.k.ss,
          *v = a.v.chain(b, n, N) + t * a.v.ss, *dy = a.dy.chain(b, n, N) + t * a.dy.ss;
  const float f = to_float(a.f.chain(b, n, N)[t * a.f.ss]);
  if (threadIdx.x == 0) df = 0.f;
  __syncthreads();
  float df_part = 0.f;
  for (int64_t e = threadIdx.x; e < kv; e += blockDim.x) {
    const int64_t i = e / V, c = e % V, x = chain * kv + e;
    float g = carry[x] + to_float(q[i]) * to_float(dy[c]);
    if (a.clip > 0) g = fminf(fmaxf(g, -a.clip), a.clip);
    const float z = tanhf(pre[x] + to_float(k[i]) * to_float(v[c]));
    df_part += g * (h[x] - z);
    da[e] = dA_out[x] = (1.f - f) * g * (1.f - z * z);
    carry[x] = f * g;
  }
  atomicAdd(&df, df_part);
  __syncthreads();
  if (threadIdx.x == 0) a.df.chain(b, n, N, S, 1).put(t, 0, df);
  const auto dq_out = a.dq.chain(b, n, N, S, K), dk_out = a.dk.chain(b, n, N, S, K);
  for (int i = threadIdx.x; i < K; i += blockDim.x) {
    float dq = 0.f, dk = 0.f;
    for (int c = 0; c < V; ++c) {
      dq += h_next[chain * kv + i * V + c] * to_float(dy[c]);
      dk += da[i * V + c] * to_float(v[c]);
    }
    dq_out.put(t, i, dq);
    dk_out.put(t, i, dk);
  }
  const auto dv_out = a.dv.chain(b, n, N, S, V);
  for (int c = threadIdx.x; c < V; c += blockDim.x) {
    float dv = 0.f;
    for (int i = 0; i < K; ++i) dv += da[i * V + c] * to_float(k[i]);
    dv_out.put(t, c, dv);
  }
}

template <typename T>
__global__ void finish_backward(const RecurrenceArgs<T> a, int64_t kv, int64_t vv,
                                const float* carry, const float* dW) {
  const int64_t chain = blockIdx.x, n = chain % a.N;
  for (int64_t e = threadIdx.x; e < vv; e += blockDim.x)
    atomicAdd(a.dW + n / (a.N / a.Nw) * vv + e, dW[chain * vv + e]);
  if (a.dh0)
    for (int64_t e = threadIdx.x; e < kv; e += blockDim.x)
      a.dh0[chain * kv + e] = from_float<T>(carry[chain * kv + e]);
}

void check_launch(const char* what) { detail::check_cuda(cudaGetLastError(), what); }

// C (V x n, column-major) = op(A) op(B) + beta C for every chain: the row-major products of the
// recurrence, seen by cuBLAS as their transposes.
void batched(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
             const float* A, int64_t sa, const float* B, int64_t sb, float beta, float* C,
             int64_t sc, int64_t batch, const char* what) {
  const float one = 1.f;
  cublas_ok(cublasSgemmStridedBatched(handle, ta, tb, m, n, k, &one, A, ta == CUBLAS_OP_N ? m : k,
                                      sa, B, tb == CUBLAS_OP_N ? k : n, sb, &beta, C, m, sc,
                                      static_cast<int>(batch)),
            what);
}

void check_shape(const M2rnnShape& s) {
  s.validate();
  if (s.B * s.N() > (int64_t(1) << 31) - 1 || s.K * s.V > 8192)
    throw std::invalid_argument(
        "m2rnn cublas: K V must be at most 8192 (shared memory of one block) and B N < 2^31");
}

}  // namespace

size_t m2rnn_cublas_states_bytes(const M2rnnShape& s) {
  return static_cast<size_t>((s.S + 1) * s.B * s.N() * s.K * s.V) * sizeof(float);
}

template <typename T>
size_t m2rnn_cublas_workspace_bytes(const M2rnnShape& s) {
  return Buffers::bytes(s) + detail::grad_workspace_bytes<T>(s);
}

template <typename T>
void m2rnn_cublas_forward(const M2rnnForward<T>& p, float* states, void* workspace,
                          size_t workspace_bytes, cublasHandle_t handle, cudaStream_t stream) {
  const M2rnnShape& s = p.shape;
  check_shape(s);
  if (workspace_bytes < m2rnn_cublas_workspace_bytes<T>(s))
    throw std::invalid_argument("m2rnn cublas: workspace too small");
  const RecurrenceArgs<T> a = detail::forward_args(p);
  const Buffers buf(s, workspace);
  const int64_t chains = s.B * s.N(), K = s.K, V = s.V, kv = K * V;
  cublas_ok(cublasSetStream(handle, stream), "cublasSetStream");
  expand_w<<<chains, kThreads, 0, stream>>>(p.W, buf.W, s.N(), s.Nw, V * V);
  load_h0<<<1024, kThreads, 0, stream>>>(p.h0, states, chains * kv);
  check_launch("m2rnn cublas: set-up");
  for (int64_t t = 0; t < s.S; ++t) {
    const float* h = states + t * chains * kv;
    batched(handle, CUBLAS_OP_N, CUBLAS_OP_N, V, K, V, buf.W, V * V, h, kv, 0.f, buf.pre, kv,
            chains, "H W");
    forward_step<<<chains, kThreads, kv * sizeof(float), stream>>>(a, K, V, t, buf.pre, h,
                                                                   states + (t + 1) * chains * kv);
    check_launch("m2rnn cublas: forward step");
  }
}

template <typename T>
void m2rnn_cublas_backward(const M2rnnBackward<T>& p, const float* states, void* workspace,
                           size_t workspace_bytes, cublasHandle_t handle, cudaStream_t stream) {
  const M2rnnShape& s = p.fwd.shape;
  check_shape(s);
  if (workspace_bytes < m2rnn_cublas_workspace_bytes<T>(s))
    throw std::invalid_argument("m2rnn cublas: workspace too small");
  RecurrenceArgs<T> a = detail::forward_args(p.fwd);
  const Buffers buf(s, workspace);
  const int64_t N = s.N(), chains = s.B * N, K = s.K, V = s.V, kv = K * V;
  a.dy = {p.dy, s.S * N * V, N * V, V, N};
  a.clip = p.grad_clip > 0 ? static_cast<float>(p.grad_clip) : 0.f;
  a.dh0 = p.dh0;
  detail::grad_begin(p, buf.grads, a, stream);
  cublas_ok(cublasSetStream(handle, stream), "cublasSetStream");
  expand_w<<<chains, kThreads, 0, stream>>>(p.fwd.W, buf.W, N, s.Nw, V * V);
  load_h0<<<1024, kThreads, 0, stream>>>(p.dh_final, buf.carry, chains * kv);
  detail::check_cuda(cudaMemsetAsync(buf.dW, 0, chains * V * V * sizeof(float), stream),
                     "m2rnn cublas: zero dW");
  check_launch("m2rnn cublas: set-up");
  for (int64_t t = s.S - 1; t >= 0; --t) {
    const float* h = states + t * chains * kv;
    batched(handle, CUBLAS_OP_N, CUBLAS_OP_N, V, K, V, buf.W, V * V, h, kv, 0.f, buf.pre, kv,
            chains, "H W");
    backward_step<<<chains, kThreads, kv * sizeof(float), stream>>>(
        a, K, V, t, buf.pre, h, h + chains * kv, buf.carry, buf.dA);
    check_launch("m2rnn cublas: backward step");
    batched(handle, CUBLAS_OP_T, CUBLAS_OP_N, V, K, V, buf.W, V * V, buf.dA, kv, 1.f, buf.carry, kv,
            chains, "dA W^T");
    batched(handle, CUBLAS_OP_N, CUBLAS_OP_T, V, V, K, buf.dA, kv, h, kv, 1.f, buf.dW, V * V,
            chains, "H^T dA");
  }
  finish_backward<<<chains, kThreads, 0, stream>>>(a, kv, V * V, buf.carry, buf.dW);
  check_launch("m2rnn cublas: finish");
  detail::grad_finish(p, a, stream);
}

#define M2RNN_INSTANTIATE(T)                                                                   \
  template size_t m2rnn_cublas_workspace_bytes<T>(const M2rnnShape&);                          \
  template void m2rnn_cublas_forward<T>(const M2rnnForward<T>&, float*, void*, size_t,         \
                                        cublasHandle_t, cudaStream_t);                         \
  template void m2rnn_cublas_backward<T>(const M2rnnBackward<T>&, const float*, void*, size_t, \
                                         cublasHandle_t, cudaStream_t);
M2RNN_INSTANTIATE(float)
M2RNN_INSTANTIATE(bf16)
#undef M2RNN_INSTANTIATE

}  // namespace m2b::kernels::cuda
