#include "models/ops/delta_rule.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "models/ops/linear_recurrence.h"

namespace m2b::models::ops {
namespace {

// Sequence shapes; the step checks its inputs as a sequence of one.
void check_delta_rule_inputs(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& log_a, const torch::Tensor& beta,
                             const torch::Tensor& state) {
  require("delta_rule", q.dim() == 4 && q.size(1) > 0,
          "q must be (batch, seq, heads, head_k_dim) with seq >= 1, got " + shape_of(q));
  const int64_t b = q.size(0), S = q.size(1), H = q.size(2), K = q.size(3);
  require("delta_rule", k.sizes() == q.sizes(),
          fmt::format("k must have the shape of q {}, got {}", shape_of(q), shape_of(k)));
  require("delta_rule", v.dim() == 4 && v.size(0) == b && v.size(1) == S && v.size(2) == H,
          fmt::format("v must be (batch, seq, heads, head_v_dim) with ({}, {}, {}) leading, got {}",
                      b, S, H, shape_of(v)));
  for (const auto& [name, t] : {std::pair{"log_a", &log_a}, std::pair{"beta", &beta}})
    require("delta_rule", t->sizes() == torch::IntArrayRef({b, S, H}),
            fmt::format("{} must be (batch, seq, heads) = ({}, {}, {}), got {}", name, b, S, H,
                        shape_of(*t)));
  require(
      "delta_rule", !state.defined() || state.sizes() == torch::IntArrayRef({b, H, K, v.size(3)}),
      fmt::format("the state must be (batch, heads, head_k_dim, head_v_dim) = ({}, {}, {}, {}), "
                  "got {}",
                  b, H, K, v.size(3), shape_of(state)));
}

}  // namespace

DeltaRuleResult delta_rule_step(const torch::Tensor& q, const torch::Tensor& k,
                                const torch::Tensor& v, const torch::Tensor& log_a,
                                const torch::Tensor& beta, const torch::Tensor& state) {
  check_delta_rule_inputs(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), log_a.unsqueeze(1),
                          beta.unsqueeze(1), state);
  // a (I - b k k^T) S + b k v^T  =  S' + k u^T  with  S' = a S,  u = b (v - S'^T k).
  auto decayed = state.defined()
                     ? log_a.exp().unsqueeze(-1).unsqueeze(-1) * state
                     : torch::zeros({q.size(0), q.size(1), q.size(2), v.size(2)}, v.options());
  auto u = beta.unsqueeze(-1) * (v - (k.unsqueeze(-1) * decayed).sum(-2));
  auto next = decayed + k.unsqueeze(-1) * u.unsqueeze(-2);
  return {(q.unsqueeze(-1) * next).sum(-2), next};
}

DeltaRuleResult delta_rule_recurrent(const torch::Tensor& q, const torch::Tensor& k,
                                     const torch::Tensor& v, const torch::Tensor& log_a,
                                     const torch::Tensor& beta,
                                     const torch::Tensor& initial_state) {
  check_delta_rule_inputs(q, k, v, log_a, beta, initial_state);
  std::vector<torch::Tensor> outs;
  torch::Tensor state = initial_state;
  for (int64_t t = 0; t < q.size(1); ++t) {
    auto out = delta_rule_step(q.select(1, t), k.select(1, t), v.select(1, t), log_a.select(1, t),
                               beta.select(1, t), state);
    outs.push_back(out.o);
    state = out.final_state;
  }
  return {torch::stack(outs, 1), state};
}

// Within a chunk, with g_t the cumulative log decay from the chunk start, gamma_t = exp(g_t) and
// S_0 the state at the start, the recurrence reads S_t = gamma_t S_0 + sum_{s<=t} e^{g_t-g_s} k_s u_s^T
// where u_t = b_t (v_t - a_t S_{t-1}^T k_t). Substituting gives (I + A) U = diag(b) V -
// diag(b gamma) K S_0 with A[t,s] = b_t e^{g_t-g_s} k_t.k_s (s < t), so U = U0 - W S_0 for the
// state-free U0 = (I+A)^-1 diag(b) V and W = (I+A)^-1 diag(b gamma) K, all chunks at once. Only
// the cheap state passing through U, the outputs and the next state runs chunk by chunk.
DeltaRuleResult delta_rule_chunked(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& v, const torch::Tensor& log_a,
                                   const torch::Tensor& beta, int64_t chunk,
                                   const torch::Tensor& initial_state) {
  check_delta_rule_inputs(q, k, v, log_a, beta, initial_state);
  require("delta_rule", chunk >= 1, fmt::format("chunk must be >= 1, got {}", chunk));
  const int64_t b = q.size(0), S = q.size(1), H = q.size(2), K = q.size(3), V = v.size(3);
  const int64_t L = std::min(chunk, S), nc = (S + L - 1) / L;
  // (b, S, H[, D]) -> (b, H, chunks, L, D), D = 1 for the per-head scalars.
  auto chunks = [&](const torch::Tensor& t) {
    auto t4 = t.dim() == 3 ? t.unsqueeze(-1) : t;
    return pad_time(t4, nc * L).view({b, nc, L, H, t4.size(-1)}).permute({0, 3, 1, 2, 4});
  };
  auto qc = chunks(q), kc = chunks(k), vc = chunks(v), bc = chunks(beta);
  auto la = chunks(log_a).squeeze(-1);  // (b, H, c, L)
  auto g = la.cumsum(-1).unsqueeze(-1);
  auto decay = segsum(la).exp();  // [t, s] = e^{g_t - g_s}, zero for s > t

  auto A = (bc * kc.matmul(kc.transpose(-1, -2)) * decay).tril(-1);
  auto rhs = torch::cat({bc * g.exp() * kc, bc * vc}, -1);
  // unitriangular: the solver takes the diagonal as ones, so this solves (I + A) X = rhs.
  auto solved = torch::linalg_solve_triangular(A, rhs, /*upper=*/false, /*left=*/true,
                                               /*unitriangular=*/true);
  auto W = solved.narrow(-1, 0, K), U0 = solved.narrow(-1, K, V);
  auto attn = qc.matmul(kc.transpose(-1, -2)) * decay;
  auto q_from_start = qc * g.exp();
  auto k_to_end = kc * decay.select(-2, L - 1).unsqueeze(-1);
  auto chunk_decay = g.narrow(-2, L - 1, 1).exp();  // (b, H, c, 1, 1)

  auto state = initial_state.defined() ? initial_state : v.new_zeros({b, H, K, V});
  std::vector<torch::Tensor> outs;
  // unbind, not select per chunk: select's backward writes each chunk's gradient into a zeroed
  // copy of the whole tensor, nc times over, where unbind's stacks them once.
  const auto U0s = U0.unbind(2), Ws = W.unbind(2), qs = q_from_start.unbind(2),
             attns = attn.unbind(2), decays = chunk_decay.unbind(2), ks = k_to_end.unbind(2);
  for (int64_t c = 0; c < nc; ++c) {
    auto u = U0s[c] - Ws[c].matmul(state);
    outs.push_back(qs[c].matmul(state) + attns[c].matmul(u));
    state = decays[c] * state + ks[c].transpose(-1, -2).matmul(u);
  }
  auto o = torch::stack(outs, 2).permute({0, 2, 3, 1, 4}).reshape({b, nc * L, H, V});
  return {o.narrow(1, 0, S), state};
}

}  // namespace m2b::models::ops
