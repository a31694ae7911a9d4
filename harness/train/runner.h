#pragma once
// Runs a suite: every run not yet done is claimed, trained (resumed if it has a checkpoint) and
// written to results/<suite>/<run-id>/. Finished runs are skipped; a run another process holds
// is left to it, so several `m2bench run` processes (say one per GPU) can share one suite. At
// the end of a pass the runs left to others are looked at again: one whose holder died (its
// claim is free, its summary missing) is taken and resumed, so no run waits for a rerun while a
// process of the suite is still working.
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "harness/config/suite.h"

namespace m2b {

struct SuiteRunOptions {
  std::filesystem::path results_root = "results";
  // Retrain runs that were done before this call began (runs that other processes sharing the
  // suite finish meanwhile count as done, so several fresh processes split the suite). The new
  // run trains in a staging folder and replaces the old one only when its summary is written,
  // so old results are never lost without new ones.
  bool fresh = false;
  std::vector<std::string> only;  // run ids (or unique prefixes) to run; empty for all
  std::ostream* out = nullptr;    // progress and per-run lines; null for nowhere
  bool live_progress = false;
  std::function<bool()> interrupted;  // asked after every step: true stops with a checkpoint
  bool cuda_graphs = true;            // TrainOptions::cuda_graphs
};

struct SuiteRunReport {
  int finished = 0, diverged = 0;       // trained now
  int already_done = 0;                 // done before this call
  int claimed_elsewhere = 0;            // left to other processes: done by them or still held
  std::vector<std::string> failures;    // "<run id>: <error>" for runs that threw or were refused
  std::vector<std::string> unfinished;  // "<run id> (<label>)": still held by another process
  bool interrupted = false;             // the suite stopped at a checkpoint on request
  int stopped = 0;                      // runs that stop left mid-way (resumed next time)
};

// Throws std::invalid_argument when an `only` id matches no run of the suite (or several).
SuiteRunReport run_suite(const Suite& suite, const SuiteRunOptions& options);

}  // namespace m2b
