#pragma once
// Run configurations: validation of YAML against the run schema, the canonical YAML of a
// resolved run and its id. The suite format (grid, overrides, include) is in
// harness/config/suite.h.
//
// The run schema (every key optional; a default fills what is not given):
//   model: NAME                      a named model (models: in the suite or an included file)
//   model: {name: LABEL, d_model: 64, n_layers: 2, layers: [{mixer: m2rnn, k_dim: 16, ...}],
//           mlp_hidden: 0, tie_embeddings: false}          an inline model
//   model.d_model: 128               changes one field of the chosen model (any model field)
//   task: {name: s3, params: {...}, train_min_length: 1, train_max_length: 16,
//          eval_lengths: [16, 32, 64], eval_examples: 256, eval_seed: 1234}
//   train: {steps, batch_size, lr, min_lr_ratio, warmup_steps, weight_decay, beta1, beta2, eps,
//           grad_clip, target_accuracy, log_every, eval_every, checkpoint_every, device,
//           precision, curriculum_steps, curriculum_start_length, target_patience_steps}
//                                    (harness/config/run_config.h says what each means)
//   seed: 0
// A dotted key addresses a nested field: `train.lr: 3e-4` is `train: {lr: 3e-4}`.
// eval_lengths defaults to [L, 2L, 4L] with L = train_max_length. model.vocab_size comes from
// the task's vocabulary.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "harness/config/run_config.h"

namespace m2b {

// A configuration that cannot run. what() is one line:
//   FILE:LINE:COLUMN: KEY.PATH: what was wrong and what is valid
// with 1-based line and column.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The resolved config as YAML with a fixed key order and number format (what config.yaml holds).
std::string canonical_yaml(const RunConfig& run);
// 12 hex digits of the 64-bit FNV-1a hash of `canonical`.
std::string run_id(const std::string& canonical);

// Reads back a config.yaml (canonical form: suite, model_name, seed, model with vocab_size,
// task, train), validating it as a suite run is validated; `source` names it in errors.
// Throws ConfigError.
RunConfig run_config_from_yaml(const std::string& text, const std::string& source);

}  // namespace m2b
