// The m2rnn mixer is the layer of docs/m2rnn-layer.md: recomputed here from its named
// parameters with plain LibTorch ops, it gives the same output; it starts from W = I and D = 1
// with the decay gate's documented ranges; its backends agree; its options are checked by name.
// (Causality, forward == step and split == whole are the conformance suite's.)
#include <algorithm>
#include <string>

#include "models/ops/m2rnn_op.h"
#include "models/mixer.h"
#include "tests/catch.h"

using namespace m2b;
using namespace m2b::models;
using torch::Tensor;

namespace {

using OptionMap = std::map<std::string, OptionValue>;

// K 4, V 3, q and k one head, v/W/f two, g one (repeated over N = 2), conv width 3.
const OptionMap kShared = {{"k_dim", int64_t{4}},       {"v_dim", int64_t{3}},
                           {"num_q_heads", int64_t{1}}, {"num_k_heads", int64_t{1}},
                           {"num_v_heads", int64_t{2}}, {"num_w_heads", int64_t{2}},
                           {"num_f_heads", int64_t{2}}, {"num_g_heads", int64_t{1}},
                           {"conv_kernel", int64_t{3}}, {"grad_clip", 0.5}};
constexpr int64_t kDModel = 8;

std::shared_ptr<MixerImpl> build(OptionMap options) {
  torch::manual_seed(0);
  auto mixer = make_mixer("m2rnn", kDModel, options);
  mixer->to(torch::kFloat64);
  return mixer;
}

std::string option_error_key(const OptionMap& options, int64_t d_model = kDModel) {
  try {
    make_mixer("m2rnn", d_model, options);
  } catch (const OptionError& e) {
    return e.key() + ": " + e.what();
  }
  return "accepted";
}

}  // namespace

TEST_CASE("M2RNN mixer computes the documented layer from its parameters", "[m2rnn]") {
  auto mixer = build(kShared);
  auto params = mixer->named_parameters();
  // A transition other than the identity, so that W matters.
  {
    torch::NoGradGuard no_grad;
    params["W"].add_(0.3 * torch::randn_like(params["W"]));
  }
  const int64_t B = 2, S = 6, K = 4, V = 3, N = 2, kernel = 3;
  auto x = torch::randn({B, S, kDModel}, torch::kFloat64);

  auto p = torch::matmul(x, params["in_proj.weight"].t());
  const int64_t qkv_width = 2 * K + N * V;
  auto raw = p.narrow(-1, 0, qkv_width);
  // Depthwise causal conv by hand: output t sees inputs t-kernel+1 .. t, zeros before the start.
  auto padded = torch::cat({torch::zeros({B, kernel - 1, qkv_width}, x.options()), raw}, 1);
  auto conv = params["conv.bias"].expand({B, S, qkv_width}).clone();
  for (int64_t j = 0; j < kernel; ++j)
    conv += padded.narrow(1, j, S) * params["conv.weight"].select(1, j);
  auto qkv = torch::silu(conv);
  auto q = qkv.narrow(-1, 0, K).unflatten(-1, {1, K});
  auto k = qkv.narrow(-1, K, K).unflatten(-1, {1, K});
  auto v = qkv.narrow(-1, 2 * K, N * V).unflatten(-1, {N, V});
  auto dt = torch::softplus(p.narrow(-1, qkv_width, N) + params["decay.dt_bias"]);
  auto f = torch::exp(-torch::exp(params["decay.A_log"]) * dt);
  auto g = p.narrow(-1, qkv_width + N, V).unsqueeze(-2).expand({B, S, N, V});
  auto [y, h] = m2rnn_recurrence(q, k, v, params["W"], f, Tensor(), 0.5, M2rnnBackend::Reference);
  auto out = ((y + params["D"] * v) * torch::silu(g)).flatten(-2);
  out = out * torch::rsqrt(out.pow(2).mean(-1, true) + 1e-6) * params["norm.weight"];
  auto expected = torch::matmul(out, params["out_proj.weight"].t());

  CHECK(torch::allclose(mixer->forward(x), expected, 1e-12, 1e-12));
}

TEST_CASE("M2RNN mixer starts from W = I, D = 1 and the decay gate's ranges", "[m2rnn]") {
  auto mixer = build({{"num_v_heads", int64_t{8}},
                      {"num_w_heads", int64_t{8}},
                      {"num_f_heads", int64_t{8}},
                      {"num_g_heads", int64_t{8}}});
  auto params = mixer->named_parameters();
  const int64_t V = 16;
  CHECK(torch::equal(params["W"], torch::eye(V, torch::kFloat64).repeat({8, 1, 1})));
  CHECK(torch::equal(params["D"], torch::ones({8, V}, torch::kFloat64)));
  // The names the backbone keeps out of weight decay.
  REQUIRE(params.contains("decay.A_log"));
  REQUIRE(params.contains("decay.dt_bias"));
  auto A = torch::exp(params["decay.A_log"]);
  CHECK(A.min().item<double>() > 0);
  CHECK(A.max().item<double>() <= 16);
  auto dt = torch::softplus(params["decay.dt_bias"]);
  CHECK(dt.min().item<double>() >= 1e-3 * (1 - 1e-9));
  CHECK(dt.max().item<double>() <= 1e-1 * (1 + 1e-9));
}

TEST_CASE("M2RNN mixer gives the same output and gradients with either CPU backend", "[m2rnn]") {
  auto x = torch::randn({2, 5, kDModel}, torch::kFloat64);
  std::vector<std::vector<Tensor>> grads;
  std::vector<Tensor> outputs;
  for (const char* backend : {"cpu", "reference"}) {
    OptionMap options = kShared;
    options["backend"] = std::string(backend);
    auto mixer = build(options);
    auto y = mixer->forward(x);
    outputs.push_back(y.detach());
    grads.push_back(torch::autograd::grad({y.pow(2).sum()}, mixer->parameters()));
  }
  CHECK(torch::allclose(outputs[0], outputs[1], 1e-12, 1e-12));
  for (size_t i = 0; i < grads[0].size(); ++i)
    CHECK(torch::allclose(grads[0][i], grads[1][i], 1e-10, 1e-12));
}

TEST_CASE("M2RNN mixer options are checked by name", "[m2rnn]") {
  CHECK(option_error_key({{"num_v_heads", int64_t{3}}}) ==
        "num_v_heads: mixer m2rnn: num_v_heads (3) must divide N = 4, the largest of the q, k, v, "
        "w and f head counts");
  CHECK(option_error_key({{"num_g_heads", int64_t{8}}}) ==
        "num_g_heads: mixer m2rnn: num_g_heads (8) must divide N = 4, the largest of the q, k, v, "
        "w and f head counts");
  CHECK(option_error_key({{"a_init_min", 5.0}, {"a_init_max", 2.0}}).rfind("a_init_min: ", 0) == 0);
  CHECK(option_error_key({{"backend", std::string("gpu")}}).rfind("backend: ", 0) == 0);
  CHECK(option_error_key({}, 0).rfind("d_model: ", 0) == 0);
  CHECK(option_error_key(kShared) == "accepted");
}

TEST_CASE("M2RNN mixer takes state_checkpoint_every as a positive multiple of 8", "[m2rnn]") {
  const auto& spec = MixerRegistry::instance().get("m2rnn").options;
  const auto every = std::find_if(spec.begin(), spec.end(), [](const OptionSpec& s) {
    return s.name == "state_checkpoint_every";
  });
  REQUIRE(every != spec.end());
  CHECK(std::get<int64_t>(every->default_value) == kDefaultStateCheckpointEvery);
  CHECK(option_error_key({{"state_checkpoint_every", int64_t{8}}}) == "accepted");
  CHECK(option_error_key({{"state_checkpoint_every", int64_t{128}}}) == "accepted");
  CHECK(option_error_key({{"state_checkpoint_every", int64_t{12}}}) ==
        "state_checkpoint_every: mixer m2rnn: state_checkpoint_every (12) must be a positive "
        "multiple of 8, the fused CUDA kernels' largest tile of steps");
  CHECK(option_error_key({{"state_checkpoint_every", int64_t{0}}})
            .rfind("state_checkpoint_every: ", 0) == 0);
}
