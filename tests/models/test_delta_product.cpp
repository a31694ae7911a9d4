// The gated delta product op: the naive form (explicit per-token Householder products) is the
// reference; the stepped recurrence and the chunked form over the expanded sequence agree with
// it in float64 (outputs, final states and gradients) for several reflections per token, chunk
// sizes that do and do not divide the sequence, with and without an initial state, b in (0, 2).
// One reflection per token is the gated delta rule. The gated_deltaproduct mixer agrees with
// itself over several chunks and, with num_householder 1, is gated_deltanet.
#include <string>

#include "models/mixer.h"
#include "models/ops/delta_product.h"
#include "tests/models/chunked_mixer_checks.h"
#include "tests/catch.h"
#include "tests/models/op_testing.h"

using namespace m2b::models::ops;

using m2b::models::testing::close;
using m2b::models::testing::error_of;
using m2b::models::testing::kF64;

namespace {

struct DeltaProductInputs {
  torch::Tensor q, k, v, log_a, beta, state;
};

// Unit-norm q and k as the layer gives them; decays in (e^-1, 1]; b in (0, 2).
DeltaProductInputs random_delta_product_inputs(int64_t S, int64_t n, bool with_state) {
  const int64_t b = 2, H = 3, K = 4, V = 5;
  auto unit = [&](std::vector<int64_t> sizes) {
    auto t = torch::randn(sizes, kF64);
    return t / t.norm(2, -1, true);
  };
  DeltaProductInputs in{unit({b, S, H, K}),
                        unit({b, S, n, H, K}),
                        torch::randn({b, S, n, H, V}, kF64),
                        -torch::rand({b, S, H}, kF64),
                        2 * torch::rand({b, S, n, H}, kF64),
                        {}};
  if (with_state) in.state = torch::randn({b, H, K, V}, kF64);
  return in;
}

}  // namespace

TEST_CASE("delta product naive form is the per-token product of Householder updates",
          "[delta_product]") {
  // One token, two sub-steps, written out by hand for one batch element and head (V x K form).
  torch::manual_seed(0);
  auto in = random_delta_product_inputs(1, 2, true);
  auto out = delta_product_naive(in.q, in.k, in.v, in.log_a, in.beta, in.state);
  auto I = torch::eye(4, kF64);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 3; ++h) {
      auto S = in.log_a[b][0][h].exp() * in.state[b][h];  // K x V
      for (int64_t j = 0; j < 2; ++j) {
        auto k = in.k[b][0][j][h], v = in.v[b][0][j][h];
        auto beta = in.beta[b][0][j][h];
        S = (I - beta * torch::outer(k, k)).matmul(S) + beta * torch::outer(k, v);
      }
      CHECK(close(out.final_state[b][h], S));
      CHECK(close(out.o[b][0][h], S.t().matmul(in.q[b][0][h])));
    }
}

TEST_CASE(
    "delta product recurrent and chunked forms equal the naive form, outputs and final "
    "states",
    "[delta_product]") {
  torch::manual_seed(1);
  for (int64_t n : {1, 2, 3})
    for (int64_t S : {1, 7, 16})
      for (bool with_state : {false, true}) {
        auto in = random_delta_product_inputs(S, n, with_state);
        auto ref = delta_product_naive(in.q, in.k, in.v, in.log_a, in.beta, in.state);
        REQUIRE(ref.o.sizes() == torch::IntArrayRef({2, S, 3, 5}));
        REQUIRE(ref.final_state.sizes() == torch::IntArrayRef({2, 3, 4, 5}));
        CAPTURE(n, S, with_state);
        auto rec = delta_product_recurrent(in.q, in.k, in.v, in.log_a, in.beta, in.state);
        CHECK(close(rec.o, ref.o));
        CHECK(close(rec.final_state, ref.final_state));
        for (int64_t chunk : {1, 3, 8, 64}) {
          CAPTURE(chunk);
          auto chunked =
              delta_product_chunked(in.q, in.k, in.v, in.log_a, in.beta, chunk, in.state);
          CHECK(close(chunked.o, ref.o));
          CHECK(close(chunked.final_state, ref.final_state));
        }
      }
}

TEST_CASE("delta product gradients agree across the naive, recurrent and chunked forms",
          "[delta_product]") {
  torch::manual_seed(2);
  for (int64_t S : {5, 9}) {
    auto in = random_delta_product_inputs(S, 2, true);
    std::vector<torch::Tensor> leaves{in.q, in.k, in.v, in.log_a, in.beta, in.state};
    for (auto& t : leaves) t.requires_grad_(true);
    auto o_weight = torch::randn({2, S, 3, 5}, kF64), state_weight = torch::randn_like(in.state);
    auto grads_of = [&](const DeltaRuleResult& r) {
      auto loss = (r.o * o_weight).sum() + (r.final_state * state_weight).sum();
      return torch::autograd::grad({loss}, leaves);
    };
    auto ref = grads_of(delta_product_naive(in.q, in.k, in.v, in.log_a, in.beta, in.state));
    auto rec = grads_of(delta_product_recurrent(in.q, in.k, in.v, in.log_a, in.beta, in.state));
    auto chunked =
        grads_of(delta_product_chunked(in.q, in.k, in.v, in.log_a, in.beta, 2, in.state));
    for (size_t i = 0; i < leaves.size(); ++i) {
      CAPTURE(S, i);
      CHECK(close(rec[i], ref[i]));
      CHECK(close(chunked[i], ref[i]));
    }
  }
}

TEST_CASE("delta product with one reflection per token is the gated delta rule",
          "[delta_product]") {
  torch::manual_seed(3);
  auto in = random_delta_product_inputs(10, 1, true);
  auto product = delta_product_chunked(in.q, in.k, in.v, in.log_a, in.beta, 4, in.state);
  auto rule = delta_rule_chunked(in.q, in.k.squeeze(2), in.v.squeeze(2), in.log_a,
                                 in.beta.squeeze(2), 4, in.state);
  CHECK(torch::equal(product.o, rule.o));
  CHECK(torch::equal(product.final_state, rule.final_state));
}

TEST_CASE("delta product rejects bad shapes and chunk sizes, naming what was wrong",
          "[delta_product]") {
  auto in = random_delta_product_inputs(6, 2, true);
  CHECK(error_of([&] {
          delta_product_chunked(in.q, in.k, in.v, in.log_a, in.beta, 0);
        }).find("chunk must be >= 1") != std::string::npos);
  CHECK(error_of([&] {
          delta_product_recurrent(in.q, in.k.select(2, 0), in.v, in.log_a, in.beta);
        }).find("k must be (batch, seq, householder, heads, head_k_dim)") != std::string::npos);
  CHECK(error_of([&] {
          delta_product_naive(in.q, in.k, in.v, in.log_a, in.beta.narrow(2, 0, 1));
        }).find("beta must be (batch, seq, householder, heads) = (2, 6, 2, 3), got (2, 6, 1, 3)") !=
        std::string::npos);
  CHECK(error_of([&] {
          delta_product_chunked(in.q, in.k, in.v, in.log_a, in.beta, 4, in.state.narrow(3, 0, 2));
        }).find("the state must be (batch, heads, head_k_dim, head_v_dim) = (2, 3, 4, 5)") !=
        std::string::npos);
}

TEST_CASE("gated_deltaproduct over several chunks equals its split and stepped forms",
          "[delta_product][gated_deltaproduct]") {
  for (int64_t n : {2, 3})
    for (bool negative : {false, true}) {
      CAPTURE(n, negative);
      check_chunked_mixer_matches_step("gated_deltaproduct", 16,
                                       {{"chunk_size", int64_t{3}},
                                        {"num_householder", n},
                                        {"num_heads", int64_t{3}},
                                        {"head_k_dim", int64_t{4}},
                                        {"head_v_dim", int64_t{6}},
                                        {"negative_eigenvalues", negative}});
    }
}

TEST_CASE(
    "gated_deltaproduct with num_householder 1 computes gated_deltanet with the same "
    "parameters",
    "[delta_product][gated_deltaproduct]") {
  using namespace m2b::models;
  for (bool negative : {false, true}) {
    CAPTURE(negative);
    const std::map<std::string, m2b::OptionValue> shared = {
        {"chunk_size", int64_t{4}}, {"num_heads", int64_t{2}}, {"negative_eigenvalues", negative}};
    auto product_options = shared;
    product_options["num_householder"] = int64_t{1};
    torch::manual_seed(0);
    auto net = make_mixer("gated_deltanet", 16, shared);
    torch::manual_seed(1);  // different initial weights: the copy below must make them equal
    auto product = make_mixer("gated_deltaproduct", 16, product_options);
    net->to(torch::kFloat64);
    product->to(torch::kFloat64);
    auto net_params = net->named_parameters();
    auto product_params = product->named_parameters();
    REQUIRE(net_params.size() == product_params.size());
    {
      torch::NoGradGuard no_grad;
      for (const auto& item : net_params) {
        INFO("parameter " << item.key());
        REQUIRE(product_params.contains(item.key()));
        REQUIRE(product_params[item.key()].sizes() == item.value().sizes());
        product_params[item.key()].copy_(item.value());
      }
    }
    torch::NoGradGuard no_grad;
    auto x = torch::randn({2, 11, 16}, torch::kFloat64);
    CHECK(torch::equal(product->forward(x), net->forward(x)));
    MixerState net_state, product_state;
    for (int64_t t = 0; t < 3; ++t)
      CHECK(torch::equal(product->step(x.select(1, t), product_state),
                         net->step(x.select(1, t), net_state)));
  }
}

TEST_CASE(
    "gated_deltaproduct rejects a head count that does not divide d_model unless "
    "head_k_dim is set",
    "[delta_product][gated_deltaproduct]") {
  auto [key, message] = mixer_option_error("gated_deltaproduct", 32, {{"num_heads", int64_t{3}}});
  CHECK(key == "num_heads");
  CHECK(message.find("num_heads (3) must divide d_model (32)") != std::string::npos);
  CHECK(mixer_option_error("gated_deltaproduct", 32,
                           {{"num_heads", int64_t{3}}, {"head_k_dim", int64_t{8}}})
            .first.empty());
}
