#include "harness/runner.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>

#include "harness/results.h"
#include "harness/trainer.h"

namespace m2b {

namespace fs = std::filesystem;

static std::vector<const RunConfig*> select_runs(const Suite& suite,
                                                 const std::vector<std::string>& only) {
  std::vector<const RunConfig*> selected;
  if (only.empty()) {
    for (const RunConfig& run : suite.runs) selected.push_back(&run);
    return selected;
  }
  for (const std::string& wanted : only) {
    std::vector<const RunConfig*> matches;
    for (const RunConfig& run : suite.runs)
      if (run.id.rfind(wanted, 0) == 0) matches.push_back(&run);
    if (matches.size() != 1) {
      std::vector<std::string> ids;
      for (const RunConfig& run : suite.runs) ids.push_back(run.id);
      throw std::invalid_argument(fmt::format(
          "--only {}: {} run of suite {} (its run ids: {}; `m2bench plan` lists them)", wanted,
          matches.empty() ? "matches no" : "matches more than one", suite.name,
          fmt::join(ids, ", ")));
    }
    selected.push_back(matches.front());
  }
  return selected;
}

// Puts the freshly trained `staging` folder in place of `dir` in one step where the file system
// can exchange two names (renameat2), else by two renames with the old folder kept aside until
// the new one is in place.
static void replace_run_dir(const fs::path& dir, const fs::path& staging) {
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0) {
    if (errno != EINVAL && errno != ENOSYS)
      throw std::runtime_error(fmt::format("cannot put {} in place of {}: {}", staging.string(),
                                           dir.string(), std::strerror(errno)));
    const fs::path aside = dir.parent_path() / (".old-" + dir.filename().string());
    remove_tree(aside);
    fs::rename(dir, aside);
    fs::rename(staging, dir);
    remove_tree(aside);
    return;
  }
  remove_tree(staging);  // now the old results
}

// The file system's time now, read off a probe file in `dir`: file times come from a coarser
// clock than the C++ clocks, so only file times compare safely with file times.
static fs::file_time_type file_time_now(const fs::path& dir) {
  fs::create_directories(dir);
  const fs::path probe = dir / fmt::format(".now-{}", ::getpid());
  std::ofstream(probe).close();
  const fs::file_time_type now = fs::last_write_time(probe);
  fs::remove(probe);
  return now;
}

SuiteRunReport run_suite(const Suite& suite, const SuiteRunOptions& options) {
  const std::vector<const RunConfig*> runs = select_runs(suite, options.only);
  // With fresh, a summary written after this call began comes from another process retraining
  // the same suite: new, so done. One written in the same tick of the file clock counts as old.
  std::optional<fs::file_time_type> began;
  if (options.fresh && !runs.empty())
    began = file_time_now(run_dir(options.results_root, *runs.front()).parent_path());
  auto done = [&](const fs::path& dir) {
    return read_summary(dir) && (!began || fs::last_write_time(dir / "summary.json") > *began);
  };
  std::ostream null_stream(nullptr);
  std::ostream& out = options.out ? *options.out : null_stream;
  SuiteRunReport report;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunConfig& run = *runs[i];
    const std::string label = fmt::format("[{}/{}] {} {} seed {}", i + 1, runs.size(),
                                          run.model_name, run.task.name, run.seed);
    const fs::path dir = run_dir(options.results_root, run);
    if (done(dir)) {
      ++report.already_done;
      out << label << "  done already (" << dir.string() << ")\n";
      continue;
    }
    std::optional<RunClaim> claim = RunClaim::try_claim(dir);
    // Checked again under the claim: another process may have finished it meanwhile.
    if (!claim || done(dir)) {
      ++report.claimed_elsewhere;
      out << label << "  taken by another m2bench process, skipped\n";
      continue;
    }
    TrainOptions train_options;
    train_options.progress = &out;
    train_options.live_progress = options.live_progress;
    train_options.label = label;
    train_options.cuda_graphs = options.cuda_graphs;
    if (options.interrupted) train_options.stop_requested = [&](int64_t) { return options.interrupted(); };
    try {
      std::optional<RunSummary> summary;
      if (options.fresh) {
        // A staging folder left by an earlier --fresh that was stopped: fresh means from scratch.
        const fs::path staging = dir.parent_path() / (".fresh-" + run.id);
        remove_tree(staging);
        summary = train_run(run, staging, train_options);
        if (summary) replace_run_dir(dir, staging);
      } else {
        summary = train_run(run, dir, train_options);
      }
      if (!summary) {
        report.interrupted = true;
        out << label
            << (options.fresh ? "  stopped; with --fresh it starts over when run again\n"
                              : "  stopped; the next `m2bench run` resumes it from its checkpoint\n");
        break;
      }
      ++(summary->status == "diverged" ? report.diverged : report.finished);
    } catch (const std::exception& e) {
      report.failures.push_back(fmt::format("{}: {}", run.id, e.what()));
      out << label << "  failed: " << e.what() << "\n";
    }
  }
  return report;
}

}  // namespace m2b
