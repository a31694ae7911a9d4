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
//    A summary is trusted only when it is the run's own (see read_summary, read_stored_run):
//    one copied from another run or edited by hand is reported, never tabulated.
//  - what `run` writes is opened without following symbolic links, so a link planted in a
//    results folder cannot make it write elsewhere.
// harness/train/run_claim.h keeps two workers from training the same run at once.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/config/run_config.h"

namespace m2b {

// The files of a run folder (above), named once for every reader and writer.
namespace run_files {
inline constexpr const char* kConfig = "config.yaml";
inline constexpr const char* kMetrics = "metrics.jsonl";
inline constexpr const char* kSummary = "summary.json";
inline constexpr const char* kCheckpoint = "checkpoint.pt";
inline constexpr const char* kAll[] = {kConfig, kMetrics, kSummary, kCheckpoint};
}  // namespace run_files

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
  // The peaks of what the run's tensors took and of what its process held for them (on CUDA the
  // caching allocator's reserved segments, CUDA-graph pools included: what other processes sharing
  // the GPU cannot have; on the CPU the resident set, both the same).
  int64_t peak_memory_bytes = 0, peak_reserved_bytes = 0;
  int64_t train_min_length = 0, train_max_length = 0;
  std::vector<EvalResult> eval;  // one per evaluation length, ascending
  // git_sha, git_dirty, libtorch, cuda, device, host, seed, eval_seed, started_at, finished_at
  nlohmann::json provenance = nlohmann::json::object();
};

void to_json(nlohmann::json& j, const EvalResult& r);
void from_json(const nlohmann::json& j, EvalResult& r);
void to_json(nlohmann::json& j, const RunSummary& s);
// Fields other than id, suite, model, task, seed, status, eval and an evaluation's length,
// accuracy and sequence_accuracy may be absent (summaries older than the field): they keep the
// struct's defaults. Throws nlohmann::json::exception for a missing required field or a wrong
// type.
void from_json(const nlohmann::json& j, RunSummary& s);

// results_root/<suite>/<id>
std::filesystem::path suite_dir(const std::filesystem::path& results_root,
                                const std::string& suite);
std::filesystem::path run_dir(const std::filesystem::path& results_root, const RunConfig& run);

// Replaces `path` with `content` all at once. Creates the parent folder if needed. Throws
// std::runtime_error naming the path and the system error.
void write_atomic(const std::filesystem::path& path, const std::string& content);

// Throws std::runtime_error "<what> <path>: <the system error of errno>".
[[noreturn]] void fail_errno(const std::string& what, const std::filesystem::path& path);

// Opens `path` for writing (with O_CREAT and any other `flags`) without following a symbolic
// link: a link there, planted or left over, is refused with a message naming it. Returns the fd.
int open_for_writing(const std::filesystem::path& path, int flags);

// Refuses, with the message of open_for_writing, a run folder that is a symbolic link or holds
// one in place of a file the run reads and then rewrites (config.yaml, metrics.jsonl,
// summary.json, checkpoint.pt): what is read through a link would become the run's own, and a
// linked folder would take every write outside the results.
void refuse_links(const std::filesystem::path& run_dir);

// Deletes a file or folder tree. std::filesystem::remove_all would resolve to the copy that
// libtorch.so exports, which crashes (pytorch/pytorch#133437).
void remove_tree(const std::filesystem::path& path);

// The whole file. Throws std::runtime_error "cannot read <path>: <the system error>".
std::string read_file(const std::filesystem::path& path);

// Deletes the temp files that write_atomic leaves in `run_dir` when its process is killed before
// the rename (each as large as what it held: a checkpoint, say). Only for a claimed run's
// folder, where no other process writes.
void remove_temporaries(const std::filesystem::path& run_dir);

// Throws std::runtime_error where the folder's config.yaml is another run's (a folder moved or
// copied into place): its checkpoint and metrics are that run's, not to be resumed or replaced.
void refuse_other_runs_folder(const std::filesystem::path& run_dir, const RunConfig& run);

// Writes config.yaml (the run's canonical YAML) into its run folder, creating it; refuses another
// run's folder first (refuse_other_runs_folder), writing nothing.
void write_config(const std::filesystem::path& run_dir, const RunConfig& run);

// A summary.json that cannot be trusted. what() is one line: the file, what is wrong with it and
// what to do.
class BadSummary : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// summary.json: absent -> nullopt. Throws BadSummary unless it is JSON of a run summary with a
// known status (finished, diverged), accuracies in [0, 1], and an id that is the hash of the
// config.yaml beside it (where there is one); std::runtime_error when it cannot be read.
std::optional<RunSummary> read_summary(const std::filesystem::path& run_dir);
void write_summary(const std::filesystem::path& run_dir, const RunSummary& summary);

// metrics.jsonl. `line` must be a JSON object: {"step":..,"kind":"train"|"eval","loss":..,
// "accuracy":..,"sequence_accuracy":..,"length":.. (eval only),"tokens_per_s":..,"lr":..,
// "wall_s":..}, or at the beginning of each training session {"step":..,"kind":"start"|"resume",
// "worker":{"host":..,"pid":..,"job":..,"gpu":..,"process_start":..},"at":..}.
void append_metrics(const std::filesystem::path& run_dir, const nlohmann::json& line);
std::vector<nlohmann::json> read_metrics(const std::filesystem::path& run_dir);

// What the store holds for one run, for `m2bench plan`, `run` and the tables.
// started: config, no summary; invalid: a summary.json that cannot be trusted.
enum class RunState { missing, started, finished, diverged, invalid };
struct StoredRun {
  RunState state = RunState::missing;
  std::optional<RunSummary> summary;  // finished or diverged
  std::string problem;                // invalid: BadSummary's line
};
// The run in the store folder results/<suite>/<id>: read_summary's checks, and a summary's id
// must be the folder's name too (a whole folder copied under another run's name). A run folder
// or run file that is a symbolic link is invalid, as `run` refuses it (refuse_links). A bad summary
// makes the state invalid rather than throwing, so one bad file does not hide the other runs.
StoredRun read_stored_run(const std::filesystem::path& run_dir);
RunState run_state(const std::filesystem::path& run_dir);
std::string to_string(RunState state);

}  // namespace m2b
