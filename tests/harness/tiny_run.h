#pragma once
// A run small enough to train in about a second on a CPU, shared by the trainer tests.
#include <torch/torch.h>

#include <string>

#include "harness/config/run_config.h"
#include "harness/config/run_schema.h"
#include "tasks/registry.h"

namespace m2b::test {

// One intra-op thread for every test that includes this: with a tiny model each op is a short
// parallel region, and on a loaded 2-core CI machine a descheduled OpenMP thread stalls every
// barrier (a 2 s test once took 100 s). Results do not depend on it: the unbroken and resumed
// runs of test_resume run with the same setting, the killed child included.
inline const bool kSingleThreaded = [] {
  torch::set_num_threads(1);
  return true;
}();

// A one-layer GRU language model on `task` (training lengths 2..8, evaluated at 8 and 16).
inline RunConfig tiny_run(const std::string& task = "parity", int64_t steps = 60) {
  RunConfig run;
  run.suite = "harness_test";
  run.model_name = "tiny_gru";
  run.task.name = task;
  run.task.train_min_length = 2;
  run.task.train_max_length = 8;
  run.task.eval_lengths = {8, 16};
  run.task.eval_examples = 32;
  run.task.eval_seed = 7;
  run.model.vocab_size = static_cast<int64_t>(tasks::make_task(task, {})->vocabulary().size());
  run.model.d_model = 16;
  run.model.n_layers = 1;
  run.model.layers = {{"gru", {}}};
  run.train.steps = steps;
  run.train.batch_size = 16;
  run.train.lr = 1e-2;
  run.train.warmup_steps = 5;
  run.train.target_accuracy = 2.0;  // never: tests that want early stopping set it
  run.train.log_every = 5;
  run.train.eval_every = 20;
  run.train.checkpoint_every = 10;
  run.train.device = "cpu";
  run.seed = 3;
  return run;
}

// Fills in what the suite loader would: the canonical YAML and the id.
inline RunConfig resolved(RunConfig run) {
  run.canonical_yaml = canonical_yaml(run);
  run.id = run_id(run.canonical_yaml);
  return run;
}

}  // namespace m2b::test
