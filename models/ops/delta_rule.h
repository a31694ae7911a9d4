#pragma once
// The gated delta rule (Yang et al., Gated Delta Networks, 2025). Per batch element and head, with
// a state S of head_k_dim x head_v_dim (K x V, the layout of flash-linear-attention):
//   S_t = a_t (I - b_t k_t k_t^T) S_{t-1} + b_t k_t v_t^T      a_t = exp(log_a_t) in (0, 1]
//   o_t = S_t^T q_t
// which is the transpose of the V x K form S_t = a_t S_{t-1} (I - b_t k_t k_t^T) + b_t v_t k_t^T,
// o_t = S_t q_t. Forms that the tests hold equal: the one-token step (looped over a sequence it is
// the recurrent form) and the chunked form, which writes each chunk's updates in WY form through
// the UT transform, (I + A)^-1 with A strictly lower triangular, and passes the state between
// chunks. Plain torch ops, so autograd differentiates them. q is not scaled here: the layer does.
//
// Shapes: q and k (b, S, H, K); v (b, S, H, V); log_a and beta (b, S, H); states (b, H, K, V).
// An undefined initial state means zeros.
#include <torch/torch.h>

namespace m2b::models::ops {

struct DeltaRuleResult {
  torch::Tensor o;            // (b, S, H, V); the step's is (b, H, V)
  torch::Tensor final_state;  // (b, H, K, V)
};

// S need not be a multiple of `chunk`.
DeltaRuleResult delta_rule_chunked(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& v, const torch::Tensor& log_a,
                                   const torch::Tensor& beta, int64_t chunk,
                                   const torch::Tensor& initial_state = {});

// One token: q and k (b, H, K), v (b, H, V), log_a and beta (b, H).
DeltaRuleResult delta_rule_step(const torch::Tensor& q, const torch::Tensor& k,
                                const torch::Tensor& v, const torch::Tensor& log_a,
                                const torch::Tensor& beta, const torch::Tensor& state = {});

// delta_rule_step looped over the sequence.
DeltaRuleResult delta_rule_recurrent(const torch::Tensor& q, const torch::Tensor& k,
                                     const torch::Tensor& v, const torch::Tensor& log_a,
                                     const torch::Tensor& beta,
                                     const torch::Tensor& initial_state = {});

}  // namespace m2b::models::ops
