#pragma once
// The resumable state of a training run, in <run_dir>/checkpoint.pt: model, optimiser, the torch
// generators, and the trainer's counters, with a checksum of them all. Written whole to a temp
// file and renamed into place, so a run killed at any moment leaves the previous complete
// checkpoint (or none); one damaged on disk afterwards is refused, not resumed.
//
// The task data needs no generator state: the batch of step s comes from its own stream,
// derive_seed(seed, s), so a resumed run draws exactly the batches an unbroken one would.
#include <torch/torch.h>

#include <filesystem>
#include <optional>
#include <string>

#include "harness/train/train_window.h"
#include "models/lm.h"

namespace m2b {

struct TrainProgress {
  int64_t step = 0;      // optimiser steps taken
  int64_t tokens = 0;    // training tokens seen
  double train_s = 0;    // seconds in training steps (tokens/s of the summary)
  double elapsed_s = 0;  // seconds of the whole run so far, evaluations included
  TrainWindow window;    // the log window in progress
  // The step of the first of the unbroken log windows at train.target_accuracy that end at the
  // last one; -1 when the last was below it (train.target_patience_steps).
  int64_t on_target_since = -1;
  std::string started_at;  // when the run first started (UTC, ISO 8601)
};

std::filesystem::path checkpoint_path(const std::filesystem::path& run_dir);

// `run_id` goes into the checkpoint, so that it cannot be resumed as another run.
void save_checkpoint(const std::filesystem::path& run_dir, const std::string& run_id,
                     const models::LanguageModel& model, const torch::optim::Optimizer& optimizer,
                     const TrainProgress& progress);

// Restores model, optimiser and torch generators from the run's checkpoint; nullopt when there
// is none. Throws std::runtime_error naming the file when it exists but cannot be read, or is
// another run's: it names another run id, or a tensor's shape differs from the model's (a
// checkpoint written before run ids were stored is checked by its shapes only).
std::optional<TrainProgress> load_checkpoint(const std::filesystem::path& run_dir,
                                             const std::string& run_id,
                                             models::LanguageModel& model,
                                             torch::optim::Optimizer& optimizer);

}  // namespace m2b
