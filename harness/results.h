#pragma once
// The results store: results/<suite>/<run-id>/{config.yaml, metrics.jsonl, summary.json,
// checkpoint.pt}. Nothing a run produced may be lost or half-written:
//  - config.yaml and summary.json are written whole with write_atomic (temp file in the same
//    folder, fsync, rename, fsync of the folder), so a reader sees the old file or the new one;
//  - metrics.jsonl grows by append_metrics: one line per call, appended and fsynced. A crash can
//    leave at most one torn last line (no trailing newline); read_metrics skips it (and any line
//    that is not JSON), and the next append_metrics first cuts it off, so the file is whole
//    lines again before it grows.
//  - a summary.json means the run is done (finished or diverged); its absence means not done.
// RunClaim keeps two `m2bench run` processes from training the same run at once.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/run_config.h"

namespace m2b {

struct EvalResult {
  int64_t length = 0;
  double accuracy = 0;           // over scored tokens
  double sequence_accuracy = 0;  // fraction of examples with every scored token right
  double loss = 0;
  // prefix_accuracy[t - 1]: the fraction of examples whose first t scored predictions are all
  // right (an example with fewer than t scored positions counts if all of its are right), for t
  // up to the most scored positions of one example. Empty in summaries written before it existed.
  std::vector<double> prefix_accuracy;
};

struct RunSummary {
  std::string id, suite, model, task;  // model: RunConfig::model_name; task: TaskSpec::name
  uint64_t seed = 0;
  std::string status;  // finished | diverged
  int64_t steps = 0;   // optimiser steps taken
  std::optional<int64_t> diverged_at_step;
  bool stopped_early = false;  // reached train.target_accuracy before train.steps
  double wall_s = 0, tokens_per_s = 0;
  int64_t peak_memory_bytes = 0;
  int64_t train_min_length = 0, train_max_length = 0;
  std::vector<EvalResult> eval;  // one per evaluation length, ascending
  // git_sha, git_dirty, libtorch, cuda, device, host, seed, eval_seed, started_at, finished_at
  nlohmann::json provenance = nlohmann::json::object();
};

void to_json(nlohmann::json& j, const EvalResult& r);
void from_json(const nlohmann::json& j, EvalResult& r);
void to_json(nlohmann::json& j, const RunSummary& s);
void from_json(const nlohmann::json& j, RunSummary& s);  // throws nlohmann::json::exception

// results_root/<suite>/<id>
std::filesystem::path suite_dir(const std::filesystem::path& results_root, const std::string& suite);
std::filesystem::path run_dir(const std::filesystem::path& results_root, const RunConfig& run);

// Replaces `path` with `content` all at once. Creates the parent folder if needed. Throws
// std::runtime_error naming the path and the system error.
void write_atomic(const std::filesystem::path& path, const std::string& content);

// Deletes a file or folder tree. std::filesystem::remove_all would resolve to the copy that
// libtorch.so exports, which crashes (pytorch/pytorch#133437).
void remove_tree(const std::filesystem::path& path);

// Writes config.yaml (the run's canonical YAML) into its run folder, creating it.
void write_config(const std::filesystem::path& run_dir, const RunConfig& run);

// summary.json: absent -> nullopt; present but unreadable -> std::runtime_error naming the file.
std::optional<RunSummary> read_summary(const std::filesystem::path& run_dir);
void write_summary(const std::filesystem::path& run_dir, const RunSummary& summary);

// metrics.jsonl. `line` must be a JSON object: {"step":..,"kind":"train"|"eval","loss":..,
// "accuracy":..,"sequence_accuracy":..,"length":.. (eval only),"tokens_per_s":..,"lr":..,
// "wall_s":..}.
void append_metrics(const std::filesystem::path& run_dir, const nlohmann::json& line);
std::vector<nlohmann::json> read_metrics(const std::filesystem::path& run_dir);

// What the store holds for one run, for `m2bench plan` and the tables.
enum class RunState { missing, started, finished, diverged };  // started: config, no summary
RunState run_state(const std::filesystem::path& run_dir);
std::string to_string(RunState state);

// An exclusive claim on a run folder: flock(2) on <run_dir>/.lock. The kernel drops the lock
// when the holder exits, however it exits, so a dead process never blocks a run. Move-only;
// the claim is released when the object is destroyed.
class RunClaim {
 public:
  // Creates run_dir if needed. nullopt when another process holds the claim.
  static std::optional<RunClaim> try_claim(const std::filesystem::path& run_dir);
  RunClaim(RunClaim&& other) noexcept;
  RunClaim& operator=(RunClaim&& other) noexcept;
  RunClaim(const RunClaim&) = delete;
  RunClaim& operator=(const RunClaim&) = delete;
  ~RunClaim();
  const std::filesystem::path& run_dir() const { return run_dir_; }

 private:
  RunClaim(std::filesystem::path run_dir, int fd) : run_dir_(std::move(run_dir)), fd_(fd) {}
  std::filesystem::path run_dir_;
  int fd_ = -1;
};

}  // namespace m2b
