#pragma once
// The gated delta product (Siems et al., DeltaProduct, 2025): each token applies n_h delta-rule
// updates, so its state transition is a product of n_h generalised Householder matrices instead
// of one. Per batch element and head, with the K x V state S, for token t and sub-steps j = 1..n:
//   S <- a_t S                                           (the forget gate, once per token)
//   S <- (I - b_tj k_tj k_tj^T) S + b_tj k_tj v_tj^T     (j = 1, ..., n)
//   o_t = S^T q_t                                         (read after the last sub-step)
// With b in (0, 2) each factor may reflect (eigenvalue down to -1); two reflections per token can
// compose any rotation, which is what lets it track S3.
//
// The forms reuse the gated delta rule (models/ops/delta_rule.h) over the expanded sequence of
// S * n steps: token t's n keys, values and betas are consecutive sub-steps, the decay sits on the
// first sub-step (log decay 0 on the others) and the output is read after the last. The naive
// form builds each token's transition matrix explicitly and serves as the reference.
//
// Shapes: q (b, S, H, K); k (b, S, n, H, K); v (b, S, n, H, V); beta (b, S, n, H);
// log_a (b, S, H); states (b, H, K, V). An undefined initial state means zeros.
#include <torch/torch.h>

#include "models/ops/delta_rule.h"

namespace m2b::models::ops {

// Explicit per-token matrices: a_t * prod_j (I - b_tj k_tj k_tj^T) applied to S, then the sums
// of the written values carried through the later factors. Slow; the reference.
DeltaRuleResult delta_product_naive(const torch::Tensor& q, const torch::Tensor& k,
                                    const torch::Tensor& v, const torch::Tensor& log_a,
                                    const torch::Tensor& beta,
                                    const torch::Tensor& initial_state = {});

// The gated delta rule's chunked WY form over the expanded sequence; `chunk` counts tokens
// (each chunk holds chunk * n sub-steps). S need not be a multiple of `chunk`.
DeltaRuleResult delta_product_chunked(const torch::Tensor& q, const torch::Tensor& k,
                                      const torch::Tensor& v, const torch::Tensor& log_a,
                                      const torch::Tensor& beta, int64_t chunk,
                                      const torch::Tensor& initial_state = {});

// One token: q (b, H, K), k (b, n, H, K), v (b, n, H, V), beta (b, n, H), log_a (b, H).
DeltaRuleResult delta_product_step(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& v, const torch::Tensor& log_a,
                                   const torch::Tensor& beta, const torch::Tensor& state = {});

// delta_product_step looped over the sequence.
DeltaRuleResult delta_product_recurrent(const torch::Tensor& q, const torch::Tensor& k,
                                        const torch::Tensor& v, const torch::Tensor& log_a,
                                        const torch::Tensor& beta,
                                        const torch::Tensor& initial_state = {});

}  // namespace m2b::models::ops
