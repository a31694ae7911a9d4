#pragma once
// `m2bench status SUITE`: where every run of a suite stands, read from the run folders alone
// (summary.json, metrics.jsonl, checkpoint.pt and the owner record of
// harness/train/run_claim.h), so it works from any machine that sees the results root, while
// workers on other nodes train.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "harness/config/suite.h"
#include "harness/train/run_claim.h"

namespace m2b {

enum class RunActivity {
  finished,
  diverged,
  training,  // a worker holds it and its heartbeat is fresh
  stalled,   // a worker on another host holds it, but its heartbeat stopped (see run_claim.h)
  stopped,   // begun, then stopped or killed; the next worker resumes it
  missing,   // nothing begun
  invalid,   // a summary.json that cannot be trusted
};

struct RunStatus {
  const RunConfig* run = nullptr;
  RunActivity activity = RunActivity::missing;
  std::optional<OwnerRecord> owner;  // training, stalled
  int64_t step = 0;                  // the last logged training step
  bool checkpoint = false;           // stopped: whether it resumes (else it starts over)
  double tokens_per_s = 0;           // of the last log window
  double wall_s = 0;                 // the run's time so far (whole, when finished or diverged)
  std::optional<double> eta_s;       // training: time to train.steps at its pace so far
  std::string problem;               // invalid: what is wrong
};

struct SuiteStatus {
  std::vector<RunStatus> runs;  // in the suite's order
  int count(RunActivity activity) const;
  // Time until every run is done: the runs not begun at the mean time of the finished ones (or
  // the pace of those training), shared among the workers training now; at least the longest
  // ETA of those training. nullopt when no worker trains or nothing tells a run's time.
  std::optional<double> eta_s;
  // Run folders of results/<suite>/ that no run of the plan names: runs of the suite as it was
  // before a setting changed (which gives a run a new id); those stopped with a checkpoint will
  // not be resumed by this plan.
  int outside_plan = 0, outside_plan_stopped = 0;
  // Runs whose --fresh replacement a kill cut short (`m2bench run` finishes it first).
  int replacements_cut_short = 0;
};

SuiteStatus suite_status(const Suite& suite, const std::filesystem::path& results_root);

// The report `m2bench status` prints.
std::string format_status(const Suite& suite, const std::filesystem::path& results_root,
                          const SuiteStatus& status);

}  // namespace m2b
