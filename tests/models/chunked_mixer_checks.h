#pragma once
// For mixers whose parallel form runs in chunks: the conformance suite's sequences fit in one
// chunk, so these checks force several, with splits that fall inside a chunk.
#include <map>
#include <string>
#include <vector>

#include "models/mixer.h"
#include "tests/catch.h"

// Builds `name` in float64 with `options` (which should set a small chunk_size) and checks that
// the whole sequence, the sequence split in two with the carried state, and token-by-token
// stepping give the same outputs.
inline void check_chunked_mixer_matches_step(
    const std::string& name, int64_t d_model,
    const std::map<std::string, m2b::OptionValue>& options) {
  using namespace m2b::models;
  torch::manual_seed(0);
  auto mixer = make_mixer(name, d_model, options);
  mixer->to(torch::kFloat64);
  torch::NoGradGuard no_grad;
  const int64_t seq = 11;
  auto x = torch::randn({2, seq, d_model}, torch::kFloat64);
  auto whole = mixer->forward(x);
  auto close = [](const torch::Tensor& a, const torch::Tensor& b) {
    return torch::allclose(a, b, 1e-10, 1e-10);
  };
  for (int64_t cut : {1, 4, 6}) {
    CAPTURE(cut);
    MixerState state;
    auto first = mixer->forward(x.narrow(1, 0, cut), &state);
    auto second = mixer->forward(x.narrow(1, cut, seq - cut), &state);
    CHECK(close(torch::cat({first, second}, 1), whole));
  }
  MixerState state;
  std::vector<torch::Tensor> steps;
  for (int64_t t = 0; t < seq; ++t) steps.push_back(mixer->step(x.select(1, t), state));
  CHECK(close(torch::stack(steps, 1), whole));
}

// The OptionError's key and message for `options`, or empty strings if they are accepted.
inline std::pair<std::string, std::string> mixer_option_error(
    const std::string& name, int64_t d_model,
    const std::map<std::string, m2b::OptionValue>& options) {
  try {
    m2b::models::make_mixer(name, d_model, options);
  } catch (const m2b::OptionError& e) {
    return {e.key(), e.what()};
  }
  return {};
}
