#pragma once
// Trains and evaluates one run into its results folder, resuming where a killed one stopped.
//
// Each step draws a training length uniformly from [train_min_length, train_max_length] and a
// batch of that length from its own stream (derive_seed(seed, step)), takes the cross-entropy on
// scored positions, clips the global gradient norm and steps AdamW (decay on matrices only) at
// the warm-up + cosine learning rate. Every log_every steps a training line (the window's means)
// goes to metrics.jsonl and progress; every eval_every steps and at the end the model is
// evaluated at every evaluation length; every checkpoint_every steps a checkpoint is written.
// The run ends at train.steps, early when the window's training accuracy reaches
// train.target_accuracy (and has stayed there train.target_patience_steps), or as `diverged` at
// the first step whose loss is not finite.
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "harness/config/run_config.h"
#include "harness/results/results.h"

namespace m2b {

struct TrainOptions {
  std::ostream* progress = nullptr;  // where the progress line goes; null for nowhere
  bool live_progress = false;        // redraw one line in place (a terminal)
  std::string label;                 // what the progress line calls the run
  // Asked after every step; true ends the session there with a checkpoint, so that a later
  // train_run continues exactly where it stopped (Ctrl-C, or a test interrupting a run).
  std::function<bool(int64_t step)> stop_requested;
  // On CUDA, replay each batch shape's training step from a CUDA graph
  // (harness/train/train_step.h).
  // How a run computes, not what it is, so it is not part of the run's config or id.
  bool cuda_graphs = true;
};

// Writes config.yaml, metrics.jsonl, checkpoint.pt while training, and summary.json at the end
// (the checkpoint is then deleted: the summary marks the run done). Resumes from run_dir's
// checkpoint if there is one, dropping metrics lines past its step. Returns the summary, or
// nullopt when stop_requested ended the session first. Throws for a config that cannot run.
std::optional<RunSummary> train_run(const RunConfig& run, const std::filesystem::path& run_dir,
                                    const TrainOptions& options = {});

}  // namespace m2b
