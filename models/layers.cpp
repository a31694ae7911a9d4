#include "models/layers.h"

#include <cmath>
#include <fmt/format.h>
#include <stdexcept>

namespace m2b::models {

static void require_positive(const char* what, const char* name, int64_t value) {
  if (value <= 0)
    throw std::invalid_argument(fmt::format("{}: {} must be positive, got {}", what, name, value));
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  require_positive("RMSNorm", "dim", dim);
  weight_ = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // Half-precision inputs are normalised in float32: the mean of squares loses too much otherwise.
  auto xf = x.scalar_type() == torch::kFloat64 ? x : x.to(torch::kFloat32);
  auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return (normed * weight_).to(x.scalar_type());
}

CausalConvImpl::CausalConvImpl(int64_t channels, int64_t kernel)
    : channels_(channels), kernel_(kernel) {
  require_positive("CausalConv", "channels", channels);
  require_positive("CausalConv", "kernel", kernel);
  // PyTorch's Conv1d default for a depthwise conv: uniform(+-1/sqrt(fan_in)), fan_in = kernel.
  const double bound = 1.0 / std::sqrt(static_cast<double>(kernel));
  weight_ = register_parameter("weight", torch::empty({channels, kernel}).uniform_(-bound, bound));
  bias_ = register_parameter("bias", torch::empty({channels}).uniform_(-bound, bound));
}

torch::Tensor CausalConvImpl::padded_input(const torch::Tensor& x,
                                           const torch::Tensor* history) const {
  TORCH_CHECK(x.size(-1) == channels_, "CausalConv: expected ", channels_, " channels, got ",
              x.size(-1));
  if (history && history->defined()) {
    TORCH_CHECK(history->dim() == 3 && history->size(0) == x.size(0) &&
                    history->size(1) == kernel_ - 1 && history->size(2) == channels_,
                "CausalConv: history must be (B, ", kernel_ - 1, ", ", channels_, "), got ",
                history->sizes());
    return torch::cat({history->to(x.scalar_type()), x}, 1);
  }
  return torch::cat({x.new_zeros({x.size(0), kernel_ - 1, channels_}), x}, 1);
}

torch::Tensor CausalConvImpl::forward(const torch::Tensor& x, torch::Tensor* history) {
  TORCH_CHECK(x.dim() == 3, "CausalConv: x must be (B, S, C), got ", x.sizes());
  auto padded = padded_input(x, history);  // (B, kernel-1+S, C)
  auto y = torch::conv1d(padded.transpose(1, 2), weight_.unsqueeze(1), bias_,
                         /*stride=*/torch::IntArrayRef{1}, /*padding=*/torch::IntArrayRef{0},
                         /*dilation=*/torch::IntArrayRef{1}, /*groups=*/channels_);
  if (history) *history = padded.narrow(1, padded.size(1) - (kernel_ - 1), kernel_ - 1);
  return torch::silu(y.transpose(1, 2));
}

torch::Tensor CausalConvImpl::step(const torch::Tensor& x, torch::Tensor& history) {
  TORCH_CHECK(x.dim() == 2, "CausalConv::step: x must be (B, C), got ", x.sizes());
  auto window = padded_input(x.unsqueeze(1), &history);  // (B, kernel, C)
  history = window.narrow(1, 1, kernel_ - 1);
  return torch::silu((window * weight_.t()).sum(1) + bias_);
}

DecayGateImpl::DecayGateImpl(int64_t heads, double a_init_min, double a_init_max) {
  require_positive("DecayGate", "heads", heads);
  if (!(a_init_min >= 0 && a_init_min <= a_init_max))
    throw std::invalid_argument(fmt::format(
        "DecayGate: need 0 <= a_init_min <= a_init_max, got [{}, {}]", a_init_min, a_init_max));
  // A = 0 would make log A = -inf; the floor keeps every head decaying, however slowly.
  auto A = torch::empty({heads}, torch::kFloat64).uniform_(a_init_min, a_init_max).clamp_min(1e-4);
  const double lo = std::log(1e-3), hi = std::log(1e-1);
  auto dt = torch::exp(torch::empty({heads}, torch::kFloat64).uniform_(lo, hi)).clamp_min(1e-4);
  auto inv_softplus_dt = dt + torch::log(-torch::expm1(-dt));
  A_log_ = register_parameter("A_log", torch::log(A).to(torch::get_default_dtype()));
  dt_bias_ = register_parameter("dt_bias", inv_softplus_dt.to(torch::get_default_dtype()));
}

DecayGateImpl::Decay DecayGateImpl::forward(const torch::Tensor& raw) {
  TORCH_CHECK(raw.size(-1) == A_log_.size(0), "DecayGate: expected ", A_log_.size(0),
              " heads in the last dimension, got ", raw.size(-1));
  auto dt = torch::softplus(raw + dt_bias_);
  return {dt, -torch::exp(A_log_) * dt};
}

SwiGLUImpl::SwiGLUImpl(int64_t d_model, int64_t hidden) {
  require_positive("SwiGLU", "d_model", d_model);
  require_positive("SwiGLU", "hidden", hidden);
  gate_up_ = register_module(
      "gate_up", torch::nn::Linear(torch::nn::LinearOptions(d_model, 2 * hidden).bias(false)));
  down_ = register_module("down",
                          torch::nn::Linear(torch::nn::LinearOptions(hidden, d_model).bias(false)));
}

torch::Tensor SwiGLUImpl::forward(const torch::Tensor& x) {
  auto gate_up = gate_up_->forward(x).chunk(2, -1);
  return down_->forward(torch::silu(gate_up[0]) * gate_up[1]);
}

}  // namespace m2b::models
