// The shared layers: the causal conv gives the same result whole, in pieces and token by token;
// the decay gate stays in (0, 1); the norm and MLP keep shapes and dtypes.
#include "models/layers.h"
#include "tests/catch.h"
#include "tests/models/op_testing.h"

using namespace m2b::models;

using m2b::models::testing::kF64;

TEST_CASE("CausalConv forward equals token-by-token step", "[layers]") {
  torch::manual_seed(0);
  CausalConv conv(5, 4);
  conv->to(torch::kFloat64);
  auto x = torch::randn({2, 7, 5}, kF64);
  auto whole = conv->forward(x);
  torch::Tensor history;
  std::vector<torch::Tensor> steps;
  for (int64_t t = 0; t < x.size(1); ++t) steps.push_back(conv->step(x.select(1, t), history));
  CHECK(torch::allclose(whole, torch::stack(steps, 1), 1e-12, 1e-12));
  // The history after stepping is the last kernel-1 inputs.
  CHECK(torch::equal(history, x.narrow(1, 4, 3)));
}

TEST_CASE("CausalConv carries history across pieces, including pieces shorter than the kernel",
          "[layers]") {
  torch::manual_seed(1);
  CausalConv conv(3, 4);
  conv->to(torch::kFloat64);
  auto x = torch::randn({2, 9, 3}, kF64);
  auto whole = conv->forward(x);
  for (int64_t cut : {1, 2, 5, 8}) {
    torch::Tensor history;
    auto a = conv->forward(x.narrow(1, 0, cut), &history);
    REQUIRE(history.sizes() == torch::IntArrayRef({2, 3, 3}));
    auto b = conv->forward(x.narrow(1, cut, 9 - cut), &history);
    CHECK(torch::allclose(whole, torch::cat({a, b}, 1), 1e-12, 1e-12));
  }
  // The first token sees zeros before it: only weight[:, kernel-1] and the bias act on it.
  auto first = conv->forward(x.narrow(1, 0, 1));
  auto expected = torch::silu(x.select(1, 0) * conv->named_parameters()["weight"].select(1, 3) +
                              conv->named_parameters()["bias"]);
  CHECK(torch::allclose(first.select(1, 0), expected, 1e-12, 1e-12));
}

TEST_CASE("CausalConv with kernel 1 is pointwise and keeps an empty history", "[layers]") {
  CausalConv conv(4, 1);
  auto x = torch::randn({1, 3, 4});
  torch::Tensor history;
  auto y = conv->forward(x, &history);
  CHECK(history.size(1) == 0);
  CHECK(torch::allclose(y.select(1, 2), conv->step(x.select(1, 2), history), 1e-6, 1e-6));
}

TEST_CASE("DecayGate gives decays in (0, 1) and the documented parameterisation", "[layers]") {
  torch::manual_seed(2);
  DecayGate gate(6, 0.0, 16.0);
  auto params = gate->named_parameters();
  REQUIRE(params.contains("A_log"));
  REQUIRE(params.contains("dt_bias"));
  auto A = torch::exp(params["A_log"]);
  CHECK(A.min().item<double>() > 0);
  CHECK(A.max().item<double>() <= 16.0 + 1e-4);
  // At raw = 0, dt is the initial dt, which lies in [1e-4, 1e-1].
  auto d0 = gate->forward(torch::zeros({6}));
  CHECK(d0.dt.min().item<double>() >= 1e-4 * (1 - 1e-4));
  CHECK(d0.dt.max().item<double>() <= 1e-1 * (1 + 1e-4));

  gate->to(torch::kFloat64);
  auto raw = torch::randn({2, 5, 6}, kF64) * 5;
  auto d = gate->forward(raw);
  CHECK(torch::allclose(d.dt, torch::softplus(raw + params["dt_bias"])));
  CHECK(torch::allclose(d.log_decay, -torch::exp(params["A_log"]) * d.dt));
  auto decay = torch::exp(d.log_decay);
  CHECK(decay.min().item<double>() > 0);
  CHECK(decay.max().item<double>() < 1);
}

TEST_CASE("DecayGate rejects an empty or inverted A range", "[layers]") {
  CHECK_THROWS_AS(DecayGate(0, 1.0, 16.0), std::invalid_argument);
  CHECK_THROWS_AS(DecayGate(4, 16.0, 1.0), std::invalid_argument);
  CHECK_THROWS_AS(DecayGate(4, -1.0, 1.0), std::invalid_argument);
}

TEST_CASE("RMSNorm normalises the last dimension and keeps the dtype", "[layers]") {
  RMSNorm norm(8);
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    norm->to(dtype);
    auto x = torch::randn({3, 4, 8}, torch::TensorOptions().dtype(dtype)) * 7;
    auto y = norm->forward(x);
    CHECK(y.scalar_type() == dtype);
    CHECK(torch::allclose(y.pow(2).mean(-1), torch::ones({3, 4}, y.options()), 1e-4, 1e-4));
  }
  CHECK(torch::equal(norm->named_parameters()["weight"],
                     torch::ones({8}, torch::TensorOptions().dtype(torch::kFloat64))));
}

TEST_CASE("SwiGLU maps d_model to d_model and is silu(gate) * up", "[layers]") {
  torch::manual_seed(3);
  SwiGLU mlp(6, 16);
  mlp->to(torch::kFloat64);
  auto x = torch::randn({2, 3, 6}, kF64);
  auto y = mlp->forward(x);
  CHECK(y.sizes() == x.sizes());
  auto p = mlp->named_parameters();
  auto gu = torch::matmul(x, p["gate_up.weight"].t());
  auto expected = torch::matmul(torch::silu(gu.narrow(-1, 0, 16)) * gu.narrow(-1, 16, 16),
                                p["down.weight"].t());
  CHECK(torch::allclose(y, expected, 1e-12, 1e-12));
}
