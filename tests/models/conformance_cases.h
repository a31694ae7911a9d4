#pragma once
// The conformance suite every registered mixer is held to, the contract that lets a baseline be
// one file in models/mixers/: shapes, causality, parallel form == step-by-step, split sequence
// with carried state == whole, finite and reaching gradients, and bad options rejected with
// OptionError.
// Mixers come from the registry, so a new one is tested with no edit here; the tables below only
// add option variants (head sharing, ...) and known-bad combinations for mixers that have them.
//
// The including file defines `static torch::Device conformance_device()` before including this:
// test_conformance.cpp (CPU, or CUDA when M2BENCH_TEST_DEVICE=cuda) and gpu_test_conformance.cpp.
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "models/mixer.h"
#include "tests/catch.h"

namespace conformance {

using m2b::OptionError;
using m2b::OptionType;
using m2b::OptionValue;
using OptionMap = std::map<std::string, OptionValue>;
using namespace m2b::models;

constexpr int64_t kDModel = 32;
constexpr int64_t kBatch = 2;

// Option sets tested besides the defaults.
inline std::vector<OptionMap> option_variants(const std::string& mixer) {
  // Not formatted: a variant's options stay together.
  // clang-format off
  static const std::map<std::string, std::vector<OptionMap>> table = {
      {"attention",
       {{{"num_heads", int64_t{1}}},
        {{"num_heads", int64_t{8}}},
        {{"positional", std::string("none")}}}},
      // Chunk sizes below S cross chunk boundaries; results must not depend on them.
      {"mamba2",
       {{{"chunk_size", int64_t{3}}},
        {{"chunk_size", int64_t{2}}, {"head_dim", int64_t{64}}, {"d_state", int64_t{8}}},
        {{"conv_kernel", int64_t{1}}, {"expand", int64_t{1}}}}},
      {"gated_deltanet",
       {{{"chunk_size", int64_t{3}}},
        {{"num_heads", int64_t{2}}, {"head_k_dim", int64_t{8}}, {"head_v_dim", int64_t{4}},
         {"chunk_size", int64_t{4}}, {"negative_eigenvalues", true}},
        {{"conv_kernel", int64_t{1}}, {"num_heads", int64_t{1}}}}},
      {"gated_deltaproduct",
       {{{"chunk_size", int64_t{3}}, {"negative_eigenvalues", true}},
        {{"num_householder", int64_t{1}}},
        {{"num_householder", int64_t{3}}, {"num_heads", int64_t{2}}, {"head_k_dim", int64_t{8}},
         {"head_v_dim", int64_t{4}}, {"chunk_size", int64_t{2}}},
        {{"conv_kernel", int64_t{1}}, {"num_heads", int64_t{1}}}}},
      // Head sharing: N = 4 with q, k, v, w, f and g head counts each dividing it.
      {"m2rnn",
       {{{"backend", std::string("reference")}},
        {{"num_q_heads", int64_t{2}}, {"num_k_heads", int64_t{4}}, {"num_v_heads", int64_t{1}},
         {"num_w_heads", int64_t{2}}, {"num_f_heads", int64_t{1}}, {"num_g_heads", int64_t{1}}},
        {{"k_dim", int64_t{4}}, {"v_dim", int64_t{8}}, {"conv_kernel", int64_t{1}},
         {"grad_clip", 0.0}}}},
      {"rnn", {{{"hidden_size", int64_t{8}}}}},
      {"gru", {{{"hidden_size", int64_t{8}}}}},
      {"lstm", {{{"hidden_size", int64_t{8}}}}},
  };
  // clang-format on
  std::vector<OptionMap> out = {{}};
  auto it = table.find(mixer);
  if (it != table.end()) out.insert(out.end(), it->second.begin(), it->second.end());
  return out;
}

// Combinations that each option's own range accepts but the mixer must reject (its `check`).
inline std::vector<OptionMap> invalid_combinations(const std::string& mixer) {
  static const std::map<std::string, std::vector<OptionMap>> table = {
      {"attention", {{{"num_heads", int64_t{3}}}, {{"num_heads", int64_t{32}}}}},
      {"mamba2", {{{"head_dim", int64_t{48}}}, {{"a_init_min", 5.0}, {"a_init_max", 2.0}}}},
      {"gated_deltanet", {{{"num_heads", int64_t{3}}}}},
      {"gated_deltaproduct",
       {{{"num_heads", int64_t{3}}}, {{"a_init_min", 5.0}, {"a_init_max", 2.0}}}},
      {"m2rnn",
       {{{"num_v_heads", int64_t{3}}},
        {{"num_q_heads", int64_t{8}}, {"num_g_heads", int64_t{3}}},
        {{"a_init_min", 5.0}, {"a_init_max", 2.0}}}},
  };
  auto it = table.find(mixer);
  return it == table.end() ? std::vector<OptionMap>{} : it->second;
}

// Out-of-range values derived from each option's spec: below min, above max, a string outside
// the choices, a wrong type, and an unknown key. Zero dimensions and head counts are among them.
inline std::vector<OptionMap> out_of_range_options(const MixerInfo& info) {
  std::vector<OptionMap> out = {{{"no_such_option", int64_t{1}}}};
  for (const auto& spec : info.options) {
    if (spec.type == OptionType::Int) {
      if (std::isfinite(spec.min)) out.push_back({{spec.name, static_cast<int64_t>(spec.min) - 1}});
      if (std::isfinite(spec.max)) out.push_back({{spec.name, static_cast<int64_t>(spec.max) + 1}});
      out.push_back({{spec.name, std::string("many")}});
    } else if (spec.type == OptionType::Float) {
      if (std::isfinite(spec.min)) out.push_back({{spec.name, spec.min - 1.0}});
      if (std::isfinite(spec.max)) out.push_back({{spec.name, spec.max + 1.0}});
    } else if (spec.type == OptionType::String) {
      if (!spec.choices.empty()) out.push_back({{spec.name, std::string("no-such-choice")}});
    } else {
      out.push_back({{spec.name, int64_t{2}}});
    }
  }
  return out;
}

inline std::string describe(const OptionMap& options) {
  std::string out;
  for (const auto& [k, v] : options) out += (out.empty() ? "" : ", ") + k + "=" + m2b::to_string(v);
  return out.empty() ? "defaults" : out;
}

struct Setup {
  torch::Device device;
  torch::Dtype dtype;
  double tol;  // absolute tolerance on outputs of unit scale
};

inline Setup setup_for(const MixerInfo& info) {
  const torch::Device device = conformance_device();
  if (device.is_cuda()) {
    // Exact-math comparisons: TF32 would blur float32 to ~1e-3.
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
    return {device, torch::kFloat32, 2e-4};
  }
  // These tensors are tiny: on a busy 2-core CI machine, intra-op threads only contend
  // (one thread runs this suite ~30x faster there).
  torch::set_num_threads(1);
  return info.supports_float64 ? Setup{device, torch::kFloat64, 1e-9}
                               : Setup{device, torch::kFloat32, 1e-4};
}

inline std::shared_ptr<MixerImpl> build(const std::string& name, const OptionMap& options,
                                        const Setup& s) {
  torch::manual_seed(0);
  auto mixer = make_mixer(name, kDModel, options);
  mixer->to(s.device, s.dtype);
  return mixer;
}

inline torch::Tensor random_input(int64_t seq, const Setup& s, uint64_t seed = 1) {
  torch::manual_seed(seed);
  return torch::randn({kBatch, seq, kDModel}, torch::kFloat64).to(s.device, s.dtype);
}

inline double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a - b).abs().max().item<double>();
}

inline torch::Tensor step_by_step(MixerImpl& mixer, const torch::Tensor& x, MixerState& state) {
  std::vector<torch::Tensor> ys;
  for (int64_t t = 0; t < x.size(1); ++t) ys.push_back(mixer.step(x.select(1, t), state));
  return torch::stack(ys, 1);
}

// Runs `body(name, info, options, setup)` in one section per mixer and option variant.
template <typename Body>
void for_each_mixer_variant(Body body) {
  for (const auto& name : MixerRegistry::instance().names()) {
    const MixerInfo& info = MixerRegistry::instance().get(name);
    for (const auto& options : option_variants(name)) {
      DYNAMIC_SECTION(name << " (" << describe(options) << ")") {
        body(name, info, options, setup_for(info));
      }
    }
  }
}

}  // namespace conformance

TEST_CASE("Mixers map (B, S, D) to (B, S, D) and one token (B, D) to (B, D)", "[conformance]") {
  using namespace conformance;
  for_each_mixer_variant(
      [](const std::string& name, const MixerInfo&, const OptionMap& options, const Setup& s) {
        auto mixer = build(name, options, s);
        torch::NoGradGuard no_grad;
        for (int64_t seq : {1, 2, 9}) {
          auto y = mixer->forward(random_input(seq, s));
          CHECK(y.sizes() == torch::IntArrayRef({kBatch, seq, kDModel}));
          CHECK(y.scalar_type() == s.dtype);
          CHECK(y.device().type() == s.device.type());  // cuda:0 is not equal to plain cuda
          CHECK(torch::isfinite(y).all().item<bool>());
        }
        MixerState state;
        auto y = mixer->step(random_input(1, s).select(1, 0), state);
        CHECK(y.sizes() == torch::IntArrayRef({kBatch, kDModel}));
        CHECK_FALSE(state.empty());
      });
}

TEST_CASE("A mixer's parameter_count is the number of parameters it builds", "[conformance]") {
  using namespace conformance;
  for_each_mixer_variant(
      [](const std::string& name, const MixerInfo& info, const OptionMap& options, const Setup& s) {
        // The memory check counts a run's parameters before it builds anything.
        REQUIRE(info.parameter_count);
        auto mixer = build(name, options, s);
        int64_t built = 0;
        for (const auto& p : mixer->parameters()) built += p.numel();
        const m2b::Options resolved = m2b::resolve_options("mixer " + name, info.options, options);
        CHECK(info.parameter_count(kDModel, resolved) == built);
      });
}

TEST_CASE("Mixers are causal: changing token t changes no output before t", "[conformance]") {
  using namespace conformance;
  for_each_mixer_variant(
      [](const std::string& name, const MixerInfo&, const OptionMap& options, const Setup& s) {
        auto mixer = build(name, options, s);
        torch::NoGradGuard no_grad;
        const int64_t seq = 8;
        auto x = random_input(seq, s);
        auto y = mixer->forward(x);
        for (int64_t t : {0, 3, 7}) {
          auto x2 = x.clone();
          x2.select(1, t).add_(3.0 * torch::randn_like(x2.select(1, t)));
          auto y2 = mixer->forward(x2);
          INFO("changed token " << t);
          if (t > 0) CHECK(max_diff(y.narrow(1, 0, t), y2.narrow(1, 0, t)) <= s.tol);
          // The changed token does reach its own output: the mixer reads its input.
          CHECK(max_diff(y.select(1, t), y2.select(1, t)) > 1e3 * s.tol);
        }
      });
}

TEST_CASE("Mixer forward equals token-by-token step", "[conformance]") {
  using namespace conformance;
  for_each_mixer_variant([](const std::string& name, const MixerInfo&, const OptionMap& options,
                            const Setup& s) {
    auto mixer = build(name, options, s);
    torch::NoGradGuard no_grad;
    for (int64_t seq : {1, 7}) {
      INFO("sequence length " << seq);
      auto x = random_input(seq, s);
      MixerState parallel_state, step_state;
      auto whole = mixer->forward(x, &parallel_state);
      CHECK(max_diff(whole, mixer->forward(x)) <= s.tol);  // a state pointer changes nothing
      CHECK(max_diff(whole, step_by_step(*mixer, x, step_state)) <= s.tol);
      // Both final states continue the sequence the same way.
      auto next = random_input(2, s, 7);
      CHECK(max_diff(mixer->forward(next, &parallel_state), mixer->forward(next, &step_state)) <=
            s.tol);
    }
  });
}

TEST_CASE("Mixer on a split sequence with carried state equals the whole sequence",
          "[conformance]") {
  using namespace conformance;
  for_each_mixer_variant(
      [](const std::string& name, const MixerInfo&, const OptionMap& options, const Setup& s) {
        auto mixer = build(name, options, s);
        torch::NoGradGuard no_grad;
        const int64_t seq = 9;
        auto x = random_input(seq, s);
        auto whole = mixer->forward(x);
        for (int64_t cut : {1, 2, 5, 8}) {
          INFO("cut after " << cut << " tokens");
          MixerState state;
          auto first = mixer->forward(x.narrow(1, 0, cut), &state);
          auto second = mixer->forward(x.narrow(1, cut, seq - cut), &state);
          CHECK(max_diff(whole, torch::cat({first, second}, 1)) <= s.tol);
          // Three pieces: the state carries more than once.
          if (cut + 2 < seq) {
            MixerState s3;
            auto a = mixer->forward(x.narrow(1, 0, cut), &s3);
            auto b = mixer->forward(x.narrow(1, cut, 2), &s3);
            auto c = mixer->forward(x.narrow(1, cut + 2, seq - cut - 2), &s3);
            CHECK(max_diff(whole, torch::cat({a, b, c}, 1)) <= s.tol);
          }
          // A prompt in parallel form, then generation token by token.
          MixerState mixed;
          auto prompt = mixer->forward(x.narrow(1, 0, cut), &mixed);
          auto rest = step_by_step(*mixer, x.narrow(1, cut, seq - cut), mixed);
          CHECK(max_diff(whole, torch::cat({prompt, rest}, 1)) <= s.tol);
        }
      });
}

TEST_CASE("Mixer gradients are finite and reach every parameter and the input", "[conformance]") {
  using namespace conformance;
  for_each_mixer_variant(
      [](const std::string& name, const MixerInfo&, const OptionMap& options, const Setup& s) {
        auto mixer = build(name, options, s);
        auto x = random_input(6, s).requires_grad_(true);
        auto weights = random_input(6, s, 2);
        (mixer->forward(x) * weights).sum().backward();
        REQUIRE(x.grad().defined());
        CHECK(torch::isfinite(x.grad()).all().item<bool>());
        CHECK(x.grad().abs().sum().item<double>() > 0);
        for (const auto& item : mixer->named_parameters()) {
          INFO("parameter " << item.key());
          const auto& grad = item.value().grad();
          REQUIRE(grad.defined());
          CHECK(torch::isfinite(grad).all().item<bool>());
          CHECK(grad.abs().sum().item<double>() > 0);
        }
      });
}

TEST_CASE("Mixers reject bad options with OptionError naming the option", "[conformance]") {
  using namespace conformance;
  for (const auto& name : MixerRegistry::instance().names()) {
    const MixerInfo& info = MixerRegistry::instance().get(name);
    DYNAMIC_SECTION(name) {
      CHECK_FALSE(info.description.empty());
      for (const auto& spec : info.options) CHECK_FALSE(spec.help.empty());
      auto bad = out_of_range_options(info);
      auto combos = invalid_combinations(name);
      bad.insert(bad.end(), combos.begin(), combos.end());
      for (const auto& options : bad) {
        INFO("options: " << describe(options));
        try {
          make_mixer(name, kDModel, options);
          FAIL_CHECK("accepted");
        } catch (const OptionError& e) {
          // The key names one of the given options, so a config loader can point at it.
          CHECK(options.count(e.key()) == 1);
        }
      }
      // d_model itself: no mixer can be built with zero width.
      CHECK_THROWS_AS(make_mixer(name, 0, {}), OptionError);
    }
  }
}
