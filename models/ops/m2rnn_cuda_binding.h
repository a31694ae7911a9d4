#pragma once
// The CUDA backends of the M2RNN recurrence as LibTorch autograd functions on the current CUDA
// stream (models/ops/m2rnn_cuda_binding.cpp, built only with M2BENCH_HAVE_CUDA). m2rnn_op
// dispatches here for the `cuda` and `cublas` backends.
#include <torch/torch.h>

#include <utility>

namespace m2b::models {

// q (B,S,Nq,K), k (B,S,Nk,K), v (B,S,Nv,V), W (Nw,V,V), f (B,S,Nf), h0 (B,N,K,V) or undefined.
// Returns y (B,S,N,V) and the final state (B,N,K,V). grad_clip <= 0 disables clipping.
// `cublas` selects the step-wise cuBLAS baseline instead of the fused kernels, which save the
// state every state_checkpoint_every steps for the backward (M2rnnCudaOptions).
std::pair<torch::Tensor, torch::Tensor> m2rnn_recurrence_cuda(
    const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& W,
    const torch::Tensor& f, const torch::Tensor& h0, double grad_clip, bool cublas,
    int64_t state_checkpoint_every);

// Whether the fused kernels take these inputs (dtype, K, V, ...): `auto` picks them only then.
bool m2rnn_cuda_supports(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                         const torch::Tensor& W, const torch::Tensor& f);

}  // namespace m2b::models
