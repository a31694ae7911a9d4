// The gated delta rule op: the step is the published recurrence; its loop and the chunked WY form
// agree in float64 (outputs, final states and gradients) for chunk sizes that do and do not
// divide the sequence, with and without an initial state, with b in (0, 2) as the
// negative-eigenvalue variant allows; bad shapes are named. The gated_deltanet mixer built on
// it agrees with itself over several chunks and rejects bad head counts.
#include <string>

#include "models/ops/delta_rule.h"
#include "tests/models/chunked_mixer_checks.h"
#include "tests/catch.h"
#include "tests/models/op_testing.h"

using namespace m2b::models::ops;

using m2b::models::testing::close;
using m2b::models::testing::error_of;
using m2b::models::testing::kF64;

namespace {

struct DeltaRuleInputs {
  torch::Tensor q, k, v, log_a, beta, state;
};

// Unit-norm q and k as the layer gives them; decays in (e^-1, 1]; b in (0, 2).
DeltaRuleInputs random_delta_rule_inputs(int64_t S, bool with_state,
                                         torch::TensorOptions opts = kF64) {
  const int64_t b = 2, H = 3, K = 4, V = 5;
  auto unit = [&](std::initializer_list<int64_t> sizes) {
    auto t = torch::randn(sizes, opts);
    return t / t.norm(2, -1, true);
  };
  DeltaRuleInputs in{unit({b, S, H, K}),
                     unit({b, S, H, K}),
                     torch::randn({b, S, H, V}, opts),
                     -torch::rand({b, S, H}, opts),
                     2 * torch::rand({b, S, H}, opts),
                     {}};
  if (with_state) in.state = torch::randn({b, H, K, V}, opts);
  return in;
}

}  // namespace

TEST_CASE("delta rule step is the published V x K recurrence, transposed", "[delta_rule]") {
  torch::manual_seed(0);
  auto in = random_delta_rule_inputs(1, true);
  auto out = delta_rule_step(in.q.select(1, 0), in.k.select(1, 0), in.v.select(1, 0),
                             in.log_a.select(1, 0), in.beta.select(1, 0), in.state);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 3; ++h) {
      auto q = in.q[b][0][h], k = in.k[b][0][h], v = in.v[b][0][h];
      auto a = in.log_a[b][0][h].exp(), beta = in.beta[b][0][h];
      auto S_prev = in.state[b][h].t();  // V x K
      auto S = a * S_prev.matmul(torch::eye(4, kF64) - beta * torch::outer(k, k)) +
               beta * torch::outer(v, k);
      CHECK(close(out.final_state[b][h], S.t()));
      CHECK(close(out.o[b][h], S.matmul(q)));
    }
}

TEST_CASE("delta rule chunked form equals the recurrence, outputs and final states",
          "[delta_rule]") {
  torch::manual_seed(1);
  for (int64_t S : {1, 7, 16, 33})
    for (bool with_state : {false, true}) {
      auto in = random_delta_rule_inputs(S, with_state);
      auto ref = delta_rule_recurrent(in.q, in.k, in.v, in.log_a, in.beta, in.state);
      REQUIRE(ref.o.sizes() == in.v.sizes());
      REQUIRE(ref.final_state.sizes() == torch::IntArrayRef({2, 3, 4, 5}));
      for (int64_t chunk : {1, 4, 8, 16, 64}) {
        CAPTURE(S, with_state, chunk);
        auto chunked = delta_rule_chunked(in.q, in.k, in.v, in.log_a, in.beta, chunk, in.state);
        CHECK(close(chunked.o, ref.o));
        CHECK(close(chunked.final_state, ref.final_state));
      }
    }
}

TEST_CASE("delta rule chunked gradients equal the recurrence's", "[delta_rule]") {
  torch::manual_seed(2);
  for (int64_t S : {5, 12}) {
    auto in = random_delta_rule_inputs(S, true);
    std::vector<torch::Tensor> leaves{in.q, in.k, in.v, in.log_a, in.beta, in.state};
    for (auto& t : leaves) t.requires_grad_(true);
    auto o_weight = torch::randn_like(in.v), state_weight = torch::randn_like(in.state);
    auto grads_of = [&](const DeltaRuleResult& r) {
      auto loss = (r.o * o_weight).sum() + (r.final_state * state_weight).sum();
      return torch::autograd::grad({loss}, leaves);
    };
    auto ref = grads_of(delta_rule_recurrent(in.q, in.k, in.v, in.log_a, in.beta, in.state));
    auto chunked = grads_of(delta_rule_chunked(in.q, in.k, in.v, in.log_a, in.beta, 4, in.state));
    for (size_t i = 0; i < leaves.size(); ++i) {
      CAPTURE(S, i);
      CHECK(close(chunked[i], ref[i]));
    }
  }
}

TEST_CASE(
    "delta rule chunked form stays accurate in float32 under strong decay over long "
    "sequences",
    "[delta_rule]") {
  torch::manual_seed(3);
  auto in = random_delta_rule_inputs(256, true);
  in.log_a = in.log_a * 20;  // down to e^-20 per step: cumulative sums reach -2500
  auto ref = delta_rule_recurrent(in.q, in.k, in.v, in.log_a, in.beta, in.state);
  auto f32 = [](const torch::Tensor& t) { return t.to(torch::kFloat32); };
  auto chunked = delta_rule_chunked(f32(in.q), f32(in.k), f32(in.v), f32(in.log_a), f32(in.beta),
                                    64, f32(in.state));
  REQUIRE(torch::isfinite(chunked.o).all().item<bool>());
  CHECK(torch::allclose(chunked.o.to(torch::kFloat64), ref.o, 1e-4, 1e-4));
  CHECK(torch::allclose(chunked.final_state.to(torch::kFloat64), ref.final_state, 1e-4, 1e-4));
}

TEST_CASE("delta rule rejects bad shapes and chunk sizes, naming what was wrong", "[delta_rule]") {
  auto in = random_delta_rule_inputs(6, true);
  CHECK(error_of([&] {
          delta_rule_chunked(in.q, in.k, in.v, in.log_a, in.beta, 0);
        }).find("chunk must be >= 1") != std::string::npos);
  CHECK(error_of([&] {
          delta_rule_recurrent(in.q, in.k.narrow(3, 0, 3), in.v, in.log_a, in.beta);
        }).find("k must have the shape of q (2, 6, 3, 4), got (2, 6, 3, 3)") != std::string::npos);
  CHECK(error_of([&] {
          delta_rule_recurrent(in.q, in.k, in.v, in.log_a, in.beta.narrow(2, 0, 1));
        }).find("beta must be (batch, seq, heads) = (2, 6, 3), got (2, 6, 1)") !=
        std::string::npos);
  CHECK(error_of([&] {
          delta_rule_chunked(in.q, in.k, in.v, in.log_a, in.beta, 4, in.state.narrow(3, 0, 2));
        }).find("the state must be (batch, heads, head_k_dim, head_v_dim) = (2, 3, 4, 5)") !=
        std::string::npos);
}

TEST_CASE("gated_deltanet over several chunks equals its split and stepped forms",
          "[delta_rule][gated_deltanet]") {
  for (bool negative : {false, true}) {
    CAPTURE(negative);
    check_chunked_mixer_matches_step("gated_deltanet", 16,
                                     {{"chunk_size", int64_t{3}},
                                      {"num_heads", int64_t{3}},
                                      {"head_k_dim", int64_t{4}},
                                      {"head_v_dim", int64_t{6}},
                                      {"negative_eigenvalues", negative}});
  }
}

TEST_CASE(
    "gated_deltanet rejects a head count that does not divide d_model unless head_k_dim "
    "is set",
    "[delta_rule][gated_deltanet]") {
  auto [key, message] = mixer_option_error("gated_deltanet", 32, {{"num_heads", int64_t{3}}});
  CHECK(key == "num_heads");
  CHECK(message.find("num_heads (3) must divide d_model (32)") != std::string::npos);
  CHECK(mixer_option_error("gated_deltanet", 32,
                           {{"num_heads", int64_t{3}}, {"head_k_dim", int64_t{8}}})
            .first.empty());
}
