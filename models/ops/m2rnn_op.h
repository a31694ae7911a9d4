#pragma once
// The M2RNN recurrence as a differentiable LibTorch op, with interchangeable backends:
//   reference  LibTorch ops step by step: the readable definition and the oracle of the others
//   cpu        the torch-free CPU kernel (kernels/m2rnn.h) as an autograd function; float32/64
//   cuda       the fused CUDA kernels (models/ops/m2rnn_cuda_binding.h); builds with CUDA only
//   cublas     the step-wise cuBLAS baseline of the same binding
//   auto       cuda for CUDA tensors, cpu for float32/64 CPU tensors, reference otherwise
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace m2b::models {

enum class M2rnnBackend { Auto, Reference, Cpu, Cuda, Cublas };

// The fused CUDA kernels' default interval of saved states (kernels/cuda/m2rnn_cuda.h).
inline constexpr int64_t kDefaultStateCheckpointEvery = 64;

// "auto", "reference", "cpu", "cuda", "cublas", in that order.
const std::vector<std::string>& m2rnn_backend_names();
// Throws std::invalid_argument naming the valid backends.
M2rnnBackend parse_m2rnn_backend(const std::string& name);
std::string to_string(M2rnnBackend backend);

// q (B,S,Nq,K), k (B,S,Nk,K), v (B,S,Nv,V), W (Nw,V,V), f (B,S,Nf) in (0,1), h0 (B,N,K,V) or
// undefined for zeros; N is the largest head count and every count divides it. Returns
// y (B,S,N,V) and the final state (B,N,K,V). grad_clip > 0 clamps the gradient reaching each
// state H_t (from y_t and from step t+1 together) to [-grad_clip, grad_clip] during backward;
// grad_clip <= 0 disables it. The cuda backend saves the state every state_checkpoint_every
// steps for its backward (fewer steps: more memory, a faster backward); the others ignore it.
// Fails a TORCH_CHECK (c10::Error) for inconsistent shapes, dtypes or devices, and for a backend
// that cannot run these tensors.
std::pair<torch::Tensor, torch::Tensor> m2rnn_recurrence(
    const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& W,
    const torch::Tensor& f, const torch::Tensor& h0, double grad_clip,
    M2rnnBackend backend = M2rnnBackend::Auto,
    int64_t state_checkpoint_every = kDefaultStateCheckpointEvery);

}  // namespace m2b::models
