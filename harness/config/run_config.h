#pragma once
// One fully resolved run: what the suite loader produces (harness/config/) and the trainer
// consumes (harness/train/). Every default is filled in, so the run id, a hash of this
// config's canonical YAML, means the same run everywhere.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/options.h"
#include "models/lm.h"

namespace m2b {

// Upper bounds of a run's sizes: far beyond any run that fits a machine, yet low enough that no
// product of them overflows int64 and nothing is allocated before check_memory
// (harness/train/compute.h) can name the setting that does not fit.
constexpr int64_t kMaxLength = 1'000'000;     // training and evaluation lengths
constexpr int64_t kMaxExamples = 1'000'000;   // task.eval_examples, `data --count`
constexpr int64_t kMaxBatchSize = 65'536;     // train.batch_size
constexpr int64_t kMaxSteps = 1'000'000'000;  // train.steps and the step intervals
constexpr int64_t kMaxWidth = 65'536;         // model.d_model
constexpr int64_t kMaxMlpHidden = 262'144;    // model.mlp_hidden
constexpr int64_t kMaxLayers = 1'024;         // model.n_layers

struct TaskSpec {
  std::string name;                           // a registered task
  std::map<std::string, OptionValue> params;  // the task's parameters
  int64_t train_min_length = 1;               // training lengths drawn uniformly from this range
  int64_t train_max_length = 16;
  std::vector<int64_t> eval_lengths;  // evaluated at each
  int64_t eval_examples = 256;        // fixed evaluation set size per length
  uint64_t eval_seed = 1234;          // separate from the training seed
};

struct TrainSpec {
  int64_t steps = 1000;
  int64_t batch_size = 32;
  double lr = 1e-3;
  double min_lr_ratio = 0.1;  // cosine decays to lr * min_lr_ratio
  int64_t warmup_steps = 100;
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;        // global gradient-norm clip; 0 disables
  double target_accuracy = 1.0;  // early stop when the training accuracy reaches it; > 1 disables
  // ... and has stayed there this many steps (log windows at the target, unbroken): a run that
  // fits its training lengths may still be learning to extrapolate. 0: at the first such window.
  int64_t target_patience_steps = 0;
  int64_t log_every = 50;
  int64_t eval_every = 500;  // and always at the end
  int64_t checkpoint_every = 200;
  std::string device = "auto";     // auto | cpu | cuda
  std::string precision = "fp32";  // fp32 | tf32 | bf16 (the last two on GPU only)
  // Length curriculum (harness/train/batch_stream.h): over the first curriculum_steps steps the
  // longest training length grows linearly from curriculum_start_length (0:
  // task.train_min_length) to task.train_max_length. 0 steps: off.
  int64_t curriculum_steps = 0;
  int64_t curriculum_start_length = 0;
};

struct RunConfig {
  std::string suite;       // suite name (results/<suite>/)
  std::string model_name;  // the row label in tables (the grid value of `model`)
  models::ModelConfig model;
  TaskSpec task;
  TrainSpec train;
  uint64_t seed = 0;
  std::string id;              // short hash of canonical_yaml
  std::string canonical_yaml;  // the resolved config, written as config.yaml
};

}  // namespace m2b
