#pragma once
// Pieces shared by the linear-recurrence ops (ssd.h, delta_rule.h).
#include <torch/torch.h>

#include <string>

namespace m2b::models::ops {

// segsum(a)[..., i, j] = a_{j+1} + ... + a_i for i >= j and -inf above the diagonal, over the
// last dimension of `a`: exp() of it is the decay from step j to step i, zero where j > i.
// Summed directly rather than as cumsum differences, which cancel badly over long spans.
torch::Tensor segsum(const torch::Tensor& a);

// Zero-pads dimension 1 (time) of `t` up to `length`. Zero inputs with zero log decay leave a
// linear recurrence's state untouched, so padded steps change no output nor the final state.
torch::Tensor pad_time(const torch::Tensor& t, int64_t length);

// "(2, 16, 4, 8)", for the ops' shape errors.
std::string shape_of(const torch::Tensor& t);

// The ops' input checks: TORCH_CHECK's c10::Error("<op>: <message>") unless ok.
void require(const char* op, bool ok, const std::string& message);

}  // namespace m2b::models::ops
