#include "harness/results/suite_status.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "harness/results/report.h"
#include "harness/results/results.h"
#include "harness/train/checkpoint.h"
#include "harness/train/fresh_replacement.h"
#include "harness/train/progress.h"

namespace m2b {

namespace fs = std::filesystem;

int SuiteStatus::count(RunActivity activity) const {
  return static_cast<int>(std::count_if(
      runs.begin(), runs.end(), [&](const RunStatus& r) { return r.activity == activity; }));
}

// Whether the owner record's worker is training: its heartbeat must be fresh, and on this host its
// process alive too (a killed worker leaves its record behind). A live process with a stale
// heartbeat is a hung worker.
static RunActivity held_activity(const OwnerRecord& owner) {
  if (owner.worker.host == host_name() && !process_alive(owner.worker)) return RunActivity::stopped;
  return unix_now() - owner.heartbeat > kStaleSeconds ? RunActivity::stalled
                                                      : RunActivity::training;
}

static RunStatus run_status(const RunConfig& run, const fs::path& dir) {
  RunStatus status;
  status.run = &run;
  const StoredRun stored = read_stored_run(dir);
  if (stored.state == RunState::invalid) {
    status.activity = RunActivity::invalid;
    status.problem = stored.problem;
    return status;
  }
  if (stored.summary) {
    status.activity =
        stored.summary->status == "diverged" ? RunActivity::diverged : RunActivity::finished;
    status.step = stored.summary->steps;
    status.tokens_per_s = stored.summary->tokens_per_s;
    status.wall_s = stored.summary->wall_s;
    return status;
  }
  for (const nlohmann::json& line : read_metrics(dir))
    if (line.value("kind", "") == "train") {
      status.step = line.value("step", int64_t{0});
      status.tokens_per_s = line.value("tokens_per_s", 0.0);
      status.wall_s = line.value("wall_s", 0.0);
    }
  status.owner = read_owner(dir);
  status.checkpoint = fs::exists(checkpoint_path(dir));
  if (status.owner) status.activity = held_activity(*status.owner);
  else
    status.activity = stored.state == RunState::started || status.checkpoint ? RunActivity::stopped
                                                                             : RunActivity::missing;
  if (status.activity != RunActivity::training) status.owner.reset();
  if (status.activity == RunActivity::training && status.step > 0)
    status.eta_s = status.wall_s / static_cast<double>(status.step) *
                   static_cast<double>(run.train.steps - status.step);
  return status;
}

// What the suite's folder holds beside the plan's runs: run folders of no planned run, and
// planned runs whose --fresh replacement a kill cut short.
static void count_leftovers(const Suite& suite, const fs::path& results_root, SuiteStatus& out) {
  std::set<std::string> planned;
  for (const RunConfig& run : suite.runs) {
    planned.insert(run.id);
    if (replacement_cut_short(run_dir(results_root, run))) ++out.replacements_cut_short;
  }
  const fs::path dir = suite_dir(results_root, suite.name);
  if (!fs::is_directory(dir)) return;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (!may_hold_run(entry) || planned.count(entry.path().filename().string())) continue;
    ++out.outside_plan;
    if (!fs::exists(entry.path() / run_files::kSummary) &&
        fs::exists(checkpoint_path(entry.path())))
      ++out.outside_plan_stopped;
  }
}

SuiteStatus suite_status(const Suite& suite, const fs::path& results_root) {
  SuiteStatus out;
  for (const RunConfig& run : suite.runs)
    out.runs.push_back(run_status(run, run_dir(results_root, run)));
  count_leftovers(suite, results_root, out);

  // One run's time: the mean of the finished ones, else the projected whole of those training.
  double known_s = 0, left_s = 0, longest_s = 0;
  int known = 0, workers = 0, waiting = 0;
  for (const RunStatus& r : out.runs) {
    if (r.activity == RunActivity::finished || r.activity == RunActivity::diverged) {
      known_s += r.wall_s;
      ++known;
    }
    if (r.activity == RunActivity::stopped || r.activity == RunActivity::missing ||
        r.activity == RunActivity::stalled)
      ++waiting;
    if (r.activity != RunActivity::training) continue;
    ++workers;
    if (r.eta_s) {
      left_s += *r.eta_s;
      longest_s = std::max(longest_s, *r.eta_s);
    }
  }
  if (known == 0)
    for (const RunStatus& r : out.runs)
      if (r.eta_s) {
        known_s += r.wall_s + *r.eta_s;
        ++known;
      }
  if (workers > 0 && (known > 0 || waiting == 0))
    out.eta_s = std::max(longest_s, (left_s + waiting * (known ? known_s / known : 0)) / workers);
  return out;
}

static std::string label(const Suite& suite, const RunStatus& r) {
  const size_t i = static_cast<size_t>(r.run - suite.runs.data());
  return fmt::format("[{}/{}] {} {} seed {}  {}", i + 1, suite.runs.size(), r.run->model_name,
                     r.run->task.name, r.run->seed, r.run->id);
}

std::string format_status(const Suite& suite, const fs::path& results_root,
                          const SuiteStatus& status) {
  std::string text = fmt::format(
      "suite {} ({}): {} runs: {} finished, {} diverged, {} training, {} stopped, {} missing",
      suite.name, suite_dir(results_root, suite.name).string(), suite.runs.size(),
      status.count(RunActivity::finished), status.count(RunActivity::diverged),
      status.count(RunActivity::training), status.count(RunActivity::stopped),
      status.count(RunActivity::missing));
  if (int stalled = status.count(RunActivity::stalled))
    text += fmt::format(", {} stalled", stalled);
  if (int invalid = status.count(RunActivity::invalid))
    text += fmt::format(", {} invalid", invalid);
  text += "\n";
  for (const RunStatus& r : status.runs) {
    const std::string steps = fmt::format("step {}/{}", r.step, r.run->train.steps);
    switch (r.activity) {
      case RunActivity::training:
        text += fmt::format("training  {}  {}  {}  ETA {}  {}\n", label(suite, r), steps,
                            format_rate(r.tokens_per_s), r.eta_s ? format_duration(*r.eta_s) : "?",
                            describe(r.owner->worker));
        break;
      case RunActivity::stalled:
        text += fmt::format(
            "stalled   {}  {}  no heartbeat from its worker for over {}: the next "
            "worker that looks takes it over\n",
            label(suite, r), steps, format_duration(kStaleSeconds));
        break;
      case RunActivity::stopped:
        // The step logged last; the checkpoint it resumes from may be a little older. One that
        // stopped (or failed) before its first checkpoint has none.
        text += fmt::format("stopped   {}  {} logged  (the next `m2bench run` {})\n",
                            label(suite, r), steps,
                            r.checkpoint ? "resumes it from its checkpoint"
                                         : "starts it over: it has no checkpoint");
        break;
      case RunActivity::missing: text += fmt::format("missing   {}\n", label(suite, r)); break;
      case RunActivity::invalid:
        text += fmt::format("invalid   {}: {}\n", label(suite, r), r.problem);
        break;
      case RunActivity::finished:
      case RunActivity::diverged: break;  // counted above; `m2bench table` shows them
    }
  }
  const fs::path dir = suite_dir(results_root, suite.name);
  if (status.replacements_cut_short > 0)
    text += fmt::format(
        "{} --fresh replacement{} cut short by a kill: the next `m2bench run` puts the new result "
        "in place where it ended, else the old one back\n",
        status.replacements_cut_short, status.replacements_cut_short == 1 ? "" : "s");
  if (status.outside_plan > 0)
    text += fmt::format(
        "{} run folder{} in {} {} of no run of this plan ({} stopped with a checkpoint, which "
        "this plan will not resume): a changed setting gives a run a new id; `m2bench table {}` "
        "tabulates every folder there\n",
        status.outside_plan, status.outside_plan == 1 ? "" : "s", dir.string(),
        status.outside_plan == 1 ? "is" : "are", status.outside_plan_stopped, dir.string());
  const int training = status.count(RunActivity::training);
  if (status.eta_s)
    text += fmt::format("suite ETA {} with {} worker{} training\n", format_duration(*status.eta_s),
                        training, training == 1 ? "" : "s");
  else if (status.count(RunActivity::finished) + status.count(RunActivity::diverged) <
           static_cast<int>(suite.runs.size()))
    text += training == 0 ? "suite ETA unknown: no worker is training it now\n"
                          : "suite ETA unknown until a run has logged its pace\n";
  return text;
}

}  // namespace m2b
