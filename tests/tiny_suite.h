#pragma once
// The text of a suite of tiny models that train in about a second a run on a CPU, for the tests
// that run whole suites (in-process, or through the m2bench program).
#include <string>

namespace m2b::test {

// Models gru and att (d_model 16, one layer; gru by default) on parity, training lengths 2..8,
// evaluated at 8 and 16. `train`: the train keys beyond batch size, device and target accuracy
// (which is out of reach, so that every run takes all its steps), as YAML flow mapping entries;
// `rest`: the lines after the defaults (a grid, say).
inline std::string tiny_suite(const std::string& name, const std::string& train,
                              const std::string& rest = "") {
  return "suite: " + name + R"(
models:
  gru: {d_model: 16, n_layers: 1, layers: [{mixer: gru}]}
  att: {d_model: 16, n_layers: 1, layers: [{mixer: attention, num_heads: 2}]}
defaults:
  model: gru
  task: {name: parity, train_min_length: 2, train_max_length: 8, eval_lengths: [8, 16],
         eval_examples: 32}
  train: {batch_size: 16, device: cpu, target_accuracy: 2.0, )" +
         train + "}\n" + rest;
}

}  // namespace m2b::test
