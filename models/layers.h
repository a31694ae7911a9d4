#pragma once
// Building blocks shared by the backbone and the mixers (m2rnn, mamba2, gated_deltanet, ...).
// Each works in float32 and float64, on CPU and CUDA.
#include <torch/torch.h>

namespace m2b::models {

// y = x / sqrt(mean(x^2) + eps) * weight over the last dimension.
class RMSNormImpl : public torch::nn::Module {
 public:
  explicit RMSNormImpl(int64_t dim, double eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  double eps_;
  torch::Tensor weight_;
};
TORCH_MODULE(RMSNorm);

// Depthwise causal 1-D convolution over time followed by SiLU, with a bias per channel.
// `history` (B, kernel-1, C) holds the inputs before x, so a sequence can be processed in pieces
// or one token at a time with identical results.
class CausalConvImpl : public torch::nn::Module {
 public:
  CausalConvImpl(int64_t channels, int64_t kernel);
  // x: (B, S, C). Reads *history if defined (else zeros); when history is non-null, writes back
  // the last kernel-1 inputs (earlier history included when S < kernel-1).
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* history = nullptr);
  // x: (B, C). Initialises history to zeros if undefined, then advances it by one token.
  torch::Tensor step(const torch::Tensor& x, torch::Tensor& history);
  int64_t kernel() const { return kernel_; }

 private:
  torch::Tensor padded_input(const torch::Tensor& x, const torch::Tensor* history) const;
  int64_t channels_, kernel_;
  torch::Tensor weight_;  // (C, kernel); weight_[:, kernel-1] multiplies the current input
  torch::Tensor bias_;    // (C)
};
TORCH_MODULE(CausalConv);

// The softplus ("Mamba-2 style") decay gate, one per head:
//   dt = softplus(raw + dt_bias),  log_decay = -exp(A_log) * dt,  decay = exp(log_decay) in (0,1).
// A starts uniform in [a_init_min, a_init_max] (kept > 0), dt log-uniform in [1e-3, 1e-1]
// (floored at 1e-4) with dt_bias its inverse softplus. A_log and dt_bias take no weight decay.
class DecayGateImpl : public torch::nn::Module {
 public:
  DecayGateImpl(int64_t heads, double a_init_min, double a_init_max);
  struct Decay {
    torch::Tensor dt, log_decay;
  };
  Decay forward(const torch::Tensor& raw /* (..., heads) */);

 private:
  torch::Tensor A_log_, dt_bias_;
};
TORCH_MODULE(DecayGate);

// The gated MLP: down(silu(x W_gate) * (x W_up)), no biases.
class SwiGLUImpl : public torch::nn::Module {
 public:
  SwiGLUImpl(int64_t d_model, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Linear gate_up_{nullptr};  // d_model -> 2*hidden: [gate | up] in one matmul
  torch::nn::Linear down_{nullptr};
};
TORCH_MODULE(SwiGLU);

}  // namespace m2b::models
