// The SSD op: its quadratic, chunked and step-by-step forms agree in float64 (outputs, final
// states and gradients) for chunk sizes that do and do not divide the sequence, with and without
// an initial state and with B/C shared by groups of heads; bad shapes are named. The mamba2
// mixer built on it agrees with itself over several chunks and rejects bad head sizes.
#include <string>

#include "models/ops/ssd.h"
#include "tests/models/chunked_mixer_checks.h"
#include "tests/catch.h"
#include "tests/models/op_testing.h"

using namespace m2b::models::ops;

using m2b::models::testing::close;
using m2b::models::testing::error_of;
using m2b::models::testing::kF64;

namespace {

struct SsdInputs {
  torch::Tensor x, a, B, C, state;
};

// a in [-1, 0): real Mamba-2 log decays -exp(A_log) dt are of this order at initialisation.
SsdInputs random_ssd_inputs(int64_t S, int64_t heads, int64_t groups, bool with_state,
                            torch::TensorOptions opts = kF64) {
  const int64_t b = 2, P = 3, N = 5;
  SsdInputs in{torch::randn({b, S, heads, P}, opts),
               -torch::rand({b, S, heads}, opts),
               torch::randn({b, S, groups, N}, opts),
               torch::randn({b, S, groups, N}, opts),
               {}};
  if (with_state) in.state = torch::randn({b, heads, N, P}, opts);
  return in;
}

}  // namespace

TEST_CASE("ssd naive and chunked forms equal the recurrence, outputs and final states", "[ssd]") {
  torch::manual_seed(0);
  for (int64_t S : {1, 7, 16, 33})
    for (int64_t groups : {1, 2})
      for (bool with_state : {false, true}) {
        auto in = random_ssd_inputs(S, 4, groups, with_state);
        auto ref = ssd_recurrent(in.x, in.a, in.B, in.C, in.state);
        REQUIRE(ref.y.sizes() == in.x.sizes());
        REQUIRE(ref.final_state.sizes() == torch::IntArrayRef({2, 4, 5, 3}));
        CAPTURE(S, groups, with_state);
        auto naive = ssd_naive(in.x, in.a, in.B, in.C, in.state);
        CHECK(close(naive.y, ref.y));
        CHECK(close(naive.final_state, ref.final_state));
        for (int64_t chunk : {1, 4, 8, 16, 64}) {
          CAPTURE(chunk);
          auto chunked = ssd_chunked(in.x, in.a, in.B, in.C, chunk, in.state);
          CHECK(close(chunked.y, ref.y));
          CHECK(close(chunked.final_state, ref.final_state));
        }
      }
}

TEST_CASE("ssd step is the recurrence written out", "[ssd]") {
  torch::manual_seed(1);
  auto in = random_ssd_inputs(1, 2, 1, true);
  auto out = ssd_step(in.x.select(1, 0), in.a.select(1, 0), in.B.select(1, 0), in.C.select(1, 0),
                      in.state);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 2; ++h) {
      auto Bt = in.B[b][0][0], Ct = in.C[b][0][0], xt = in.x[b][0][h];
      auto S = in.a[b][0][h].exp() * in.state[b][h] + torch::outer(Bt, xt);
      CHECK(close(out.final_state[b][h], S));
      CHECK(close(out.y[b][h], S.t().matmul(Ct)));
    }
}

TEST_CASE("ssd chunked gradients equal the recurrence's", "[ssd]") {
  torch::manual_seed(2);
  for (int64_t S : {5, 12}) {
    auto in = random_ssd_inputs(S, 4, 2, true);
    std::vector<torch::Tensor> leaves{in.x, in.a, in.B, in.C, in.state};
    for (auto& t : leaves) t.requires_grad_(true);
    auto y_weight = torch::randn_like(in.x), state_weight = torch::randn_like(in.state);
    auto grads_of = [&](const SsdResult& r) {
      auto loss = (r.y * y_weight).sum() + (r.final_state * state_weight).sum();
      return torch::autograd::grad({loss}, leaves);
    };
    auto ref = grads_of(ssd_recurrent(in.x, in.a, in.B, in.C, in.state));
    auto chunked = grads_of(ssd_chunked(in.x, in.a, in.B, in.C, 4, in.state));
    for (size_t i = 0; i < leaves.size(); ++i) {
      CAPTURE(S, i);
      CHECK(close(chunked[i], ref[i]));
    }
  }
}

TEST_CASE("ssd chunked form stays accurate in float32 under strong decay over long sequences",
          "[ssd]") {
  torch::manual_seed(3);
  auto in = random_ssd_inputs(256, 2, 1, true);
  in.a = in.a * 20;  // down to e^-20 per step: cumulative sums reach -2500
  auto ref = ssd_recurrent(in.x, in.a, in.B, in.C, in.state);
  auto f32 = [](const torch::Tensor& t) { return t.to(torch::kFloat32); };
  auto chunked = ssd_chunked(f32(in.x), f32(in.a), f32(in.B), f32(in.C), 64, f32(in.state));
  REQUIRE(torch::isfinite(chunked.y).all().item<bool>());
  CHECK(torch::allclose(chunked.y.to(torch::kFloat64), ref.y, 1e-4, 1e-4));
  CHECK(torch::allclose(chunked.final_state.to(torch::kFloat64), ref.final_state, 1e-4, 1e-4));
}

TEST_CASE("ssd rejects bad shapes and chunk sizes, naming what was wrong", "[ssd]") {
  auto in = random_ssd_inputs(6, 4, 2, true);
  CHECK(error_of([&] { ssd_chunked(in.x, in.a, in.B, in.C, 0); }).find("chunk must be >= 1") !=
        std::string::npos);
  auto three_groups = torch::randn({2, 6, 3, 5}, kF64);
  CHECK(error_of([&] {
          ssd_naive(in.x, in.a, three_groups, three_groups);
        }).find("groups of B and C (3) must divide the heads of x (4)") != std::string::npos);
  CHECK(error_of([&] {
          ssd_naive(in.x, in.a.narrow(1, 0, 5), in.B, in.C);
        }).find("a must be (batch, seq, heads) = (2, 6, 4), got (2, 5, 4)") != std::string::npos);
  CHECK(error_of([&] {
          ssd_naive(in.x, in.a, in.B, in.C, in.state.narrow(2, 0, 4));
        }).find("the state must be") != std::string::npos);
}

TEST_CASE("mamba2 over several chunks equals its split and stepped forms", "[ssd][mamba2]") {
  check_chunked_mixer_matches_step(
      "mamba2", 16,
      {{"chunk_size", int64_t{3}}, {"head_dim", int64_t{8}}, {"d_state", int64_t{4}}});
}

TEST_CASE("mamba2 rejects a head_dim that does not divide the inner width", "[ssd][mamba2]") {
  auto [key, message] = mixer_option_error("mamba2", 32, {{"head_dim", int64_t{24}}});
  CHECK(key == "head_dim");
  CHECK(message == "mixer mamba2: head_dim (24) must divide expand * d_model = 2 * 32 = 64");
  auto order = mixer_option_error("mamba2", 32, {{"a_init_min", 8.0}, {"a_init_max", 4.0}});
  CHECK(order.first == "a_init_min");
}
