#include "models/ops/delta_product.h"

#include <fmt/format.h>

#include <string>
#include <vector>

#include "models/ops/linear_recurrence.h"

namespace m2b::models::ops {
namespace {

// Sequence shapes; the step checks its inputs as a sequence of one.
void check_delta_product_inputs(const torch::Tensor& q, const torch::Tensor& k,
                                const torch::Tensor& v, const torch::Tensor& log_a,
                                const torch::Tensor& beta, const torch::Tensor& state) {
  require("delta_product", q.dim() == 4 && q.size(1) > 0,
          "q must be (batch, seq, heads, head_k_dim) with seq >= 1, got " + shape_of(q));
  const int64_t b = q.size(0), S = q.size(1), H = q.size(2), K = q.size(3);
  require(
      "delta_product",
      k.dim() == 5 && k.size(0) == b && k.size(1) == S && k.size(2) >= 1 && k.size(3) == H &&
          k.size(4) == K,
      fmt::format("k must be (batch, seq, householder, heads, head_k_dim) = ({}, {}, n, {}, {}) "
                  "with n >= 1, got {}",
                  b, S, H, K, shape_of(k)));
  const int64_t n = k.size(2);
  require(
      "delta_product",
      v.dim() == 5 && v.size(0) == b && v.size(1) == S && v.size(2) == n && v.size(3) == H,
      fmt::format("v must be (batch, seq, householder, heads, head_v_dim) with ({}, {}, {}, {}) "
                  "leading, got {}",
                  b, S, n, H, shape_of(v)));
  require("delta_product", beta.sizes() == torch::IntArrayRef({b, S, n, H}),
          fmt::format("beta must be (batch, seq, householder, heads) = ({}, {}, {}, {}), got {}", b,
                      S, n, H, shape_of(beta)));
  require("delta_product", log_a.sizes() == torch::IntArrayRef({b, S, H}),
          fmt::format("log_a must be (batch, seq, heads) = ({}, {}, {}), got {}", b, S, H,
                      shape_of(log_a)));
  require(
      "delta_product",
      !state.defined() || state.sizes() == torch::IntArrayRef({b, H, K, v.size(4)}),
      fmt::format("the state must be (batch, heads, head_k_dim, head_v_dim) = ({}, {}, {}, {}), "
                  "got {}",
                  b, H, K, v.size(4), shape_of(state)));
}

// The delta rule's inputs over the expanded sequence of S * n sub-steps.
struct Expanded {
  torch::Tensor q, k, v, log_a, beta;
};

Expanded expand(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                const torch::Tensor& log_a, const torch::Tensor& beta) {
  const int64_t b = q.size(0), S = q.size(1), n = k.size(2), H = q.size(2), K = q.size(3);
  // The decay on the first sub-step only; the query at every sub-step (only the last is read).
  auto la = torch::cat({log_a.unsqueeze(2), log_a.new_zeros({b, S, n - 1, H})}, 2);
  return {q.unsqueeze(2).expand({b, S, n, H, K}).reshape({b, S * n, H, K}), k.flatten(1, 2),
          v.flatten(1, 2), la.flatten(1, 2), beta.flatten(1, 2)};
}

// (b, S * n, H, V) -> (b, S, H, V): each token's output after its last sub-step.
torch::Tensor last_substeps(const torch::Tensor& o, int64_t n) {
  return o.unflatten(1, {o.size(1) / n, n}).select(2, n - 1);
}

}  // namespace

DeltaRuleResult delta_product_naive(const torch::Tensor& q, const torch::Tensor& k,
                                    const torch::Tensor& v, const torch::Tensor& log_a,
                                    const torch::Tensor& beta, const torch::Tensor& initial_state) {
  check_delta_product_inputs(q, k, v, log_a, beta, initial_state);
  const int64_t b = q.size(0), S = q.size(1), n = k.size(2), H = q.size(2), K = q.size(3),
                V = v.size(4);
  auto eye = torch::eye(K, q.options()).expand({b, H, K, K});
  auto state = initial_state.defined() ? initial_state : v.new_zeros({b, H, K, V});
  std::vector<torch::Tensor> outs;
  for (int64_t t = 0; t < S; ++t) {
    // S_t = a_t M_t S_{t-1} + W_t, with M_t = H_n ... H_1 and W_t = sum_j H_n ... H_{j+1} b_j k_j v_j^T.
    auto M = eye.clone();
    auto W = v.new_zeros({b, H, K, V});
    for (int64_t j = 0; j < n; ++j) {
      auto kj = k.select(1, t).select(1, j), bj = beta.select(1, t).select(1, j);
      auto bb = bj.unsqueeze(-1).unsqueeze(-1);
      auto householder = eye - bb * kj.unsqueeze(-1).matmul(kj.unsqueeze(-2));
      M = householder.matmul(M);
      W = householder.matmul(W) +
          bb * kj.unsqueeze(-1).matmul(v.select(1, t).select(1, j).unsqueeze(-2));
    }
    auto a = log_a.select(1, t).exp().unsqueeze(-1).unsqueeze(-1);
    state = a * M.matmul(state) + W;
    outs.push_back(state.transpose(-1, -2).matmul(q.select(1, t).unsqueeze(-1)).squeeze(-1));
  }
  return {torch::stack(outs, 1), state};
}

DeltaRuleResult delta_product_step(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& v, const torch::Tensor& log_a,
                                   const torch::Tensor& beta, const torch::Tensor& state) {
  check_delta_product_inputs(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), log_a.unsqueeze(1),
                             beta.unsqueeze(1), state);
  DeltaRuleResult out{{}, state};
  for (int64_t j = 0; j < k.size(1); ++j)
    out = delta_rule_step(q, k.select(1, j), v.select(1, j),
                          j == 0 ? log_a : torch::zeros_like(log_a), beta.select(1, j),
                          out.final_state);
  return out;
}

DeltaRuleResult delta_product_recurrent(const torch::Tensor& q, const torch::Tensor& k,
                                        const torch::Tensor& v, const torch::Tensor& log_a,
                                        const torch::Tensor& beta,
                                        const torch::Tensor& initial_state) {
  check_delta_product_inputs(q, k, v, log_a, beta, initial_state);
  std::vector<torch::Tensor> outs;
  torch::Tensor state = initial_state;
  for (int64_t t = 0; t < q.size(1); ++t) {
    auto out = delta_product_step(q.select(1, t), k.select(1, t), v.select(1, t),
                                  log_a.select(1, t), beta.select(1, t), state);
    outs.push_back(out.o);
    state = out.final_state;
  }
  return {torch::stack(outs, 1), state};
}

DeltaRuleResult delta_product_chunked(const torch::Tensor& q, const torch::Tensor& k,
                                      const torch::Tensor& v, const torch::Tensor& log_a,
                                      const torch::Tensor& beta, int64_t chunk,
                                      const torch::Tensor& initial_state) {
  check_delta_product_inputs(q, k, v, log_a, beta, initial_state);
  require("delta_product", chunk >= 1, fmt::format("chunk must be >= 1, got {}", chunk));
  const int64_t n = k.size(2);
  auto e = expand(q, k, v, log_a, beta);
  auto out = delta_rule_chunked(e.q, e.k, e.v, e.log_a, e.beta, chunk * n, initial_state);
  return {last_substeps(out.o, n), out.final_state};
}

}  // namespace m2b::models::ops
