#include "harness/train/runner.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fcntl.h>
#include <unistd.h>

#include <optional>
#include <random>
#include <stdexcept>

#include "harness/results/results.h"
#include "harness/train/compute.h"
#include "harness/train/error_text.h"
#include "harness/train/fresh_replacement.h"
#include "harness/train/progress.h"
#include "harness/train/run_claim.h"
#include "harness/train/trainer.h"

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
      throw std::invalid_argument(
          fmt::format("--only {}: {} run of suite {} (its run ids: {}; `m2bench plan` lists them)",
                      wanted, matches.empty() ? "matches no" : "matches more than one", suite.name,
                      fmt::join(ids, ", ")));
    }
    selected.push_back(matches.front());
  }
  return selected;
}

// The file system's time now, read off a probe file in `dir`: file times come from a coarser
// clock than the C++ clocks, so only file times compare safely with file times. The probe is a
// new file (O_EXCL), never one already there: a planted link cannot make this truncate a file.
static fs::file_time_type file_time_now(const fs::path& dir) {
  fs::create_directories(dir);
  std::random_device entropy;
  const fs::path probe = dir / fmt::format(".now-{}.{:08x}", ::getpid(), entropy());
  ::close(open_for_writing(probe, O_WRONLY | O_EXCL));
  const fs::file_time_type now = fs::last_write_time(probe);
  fs::remove(probe);
  return now;
}

// Trains one claimed run: in its folder, or with fresh in a staging folder that replaces it once
// the summary is written. nullopt when the run was stopped on request.
static std::optional<RunSummary> train_claimed(const RunConfig& run, RunClaim& claim,
                                               const std::string& label,
                                               const SuiteRunOptions& options, std::ostream& out) {
  const fs::path dir = claim.run_dir();
  remove_temporaries(dir);
  TrainOptions train_options;
  train_options.progress = &out;
  train_options.live_progress = options.live_progress;
  train_options.label = label;
  train_options.cuda_graphs = options.cuda_graphs;
  train_options.stop_requested = [&](int64_t) {
    claim.beat();
    return options.interrupted && options.interrupted();
  };
  if (!options.fresh) return train_run(run, dir, train_options);
  // The folder the new run will replace must be this run's, not one moved into its place.
  refuse_other_runs_folder(dir, run);
  // A staging folder left by an earlier --fresh that was stopped: fresh means from scratch.
  const fs::path staging = staging_dir(dir);
  remove_tree(staging);
  std::optional<RunSummary> summary = train_run(run, staging, train_options);
  if (summary) replace_run_dir(dir, staging);
  return summary;
}

namespace {

// Where one run of the suite stands for this call.
enum class Outcome { pending, done_before, held, done_elsewhere, trained, failed };

}  // namespace

SuiteRunReport run_suite(const Suite& suite, const SuiteRunOptions& options) {
  const std::vector<const RunConfig*> runs = select_runs(suite, options.only);
  // Once, before any run: the suite's folder made and written to (the clock's probe file), since
  // a results root that cannot be written to would fail each run. With fresh, a summary written
  // after this call began comes from another process retraining the same suite: new, so done.
  // One written in the same tick of the file clock counts as old.
  const fs::file_time_type now = file_time_now(suite_dir(options.results_root, suite.name));
  std::optional<fs::file_time_type> began;
  if (options.fresh) began = now;
  // A summary that cannot be trusted is the user's to look at: the run is refused, not retrained
  // over it.
  auto done = [&](const fs::path& dir) {
    const StoredRun stored = read_stored_run(dir);
    if (stored.state == RunState::invalid) throw BadSummary(stored.problem);
    return stored.summary && (!began || fs::last_write_time(dir / run_files::kSummary) > *began);
  };
  std::ostream null_stream(nullptr);
  std::ostream& out = options.out ? *options.out : null_stream;
  SuiteRunReport report;
  std::vector<Outcome> outcomes(runs.size(), Outcome::pending);
  const auto label_of = [&](size_t i) {
    return fmt::format("[{}/{}] {} {} seed {}", i + 1, runs.size(), runs[i]->model_name,
                       runs[i]->task.name, runs[i]->seed);
  };
  // The first pass takes every run that is free; each later one takes the runs whose holder
  // died meanwhile, until a pass finds none (each run is trained at most once, so this ends).
  for (bool first_pass = true;; first_pass = false) {
    bool took_any = false;
    for (size_t i = 0; i < runs.size() && !report.interrupted; ++i) {
      Outcome& outcome = outcomes[i];
      if (outcome != Outcome::pending && outcome != Outcome::held) continue;
      // A stop asked between runs starts no new one.
      if (options.interrupted && options.interrupted()) {
        report.interrupted = true;
        out << "stopped before " << label_of(i) << "; the next `m2bench run` goes on from there\n";
        break;
      }
      const RunConfig& run = *runs[i];
      const std::string label = label_of(i);
      const fs::path dir = run_dir(options.results_root, run);
      try {
        refuse_links(dir);
        const std::optional<std::string> mended = finish_replacement(dir);
        if (!mended) {
          outcome = Outcome::held;
          if (first_pass) out << label << "  taken by another m2bench process, skipped\n";
          continue;
        }
        if (!mended->empty()) out << label << "  " << *mended << "\n";
        if (done(dir)) {
          outcome = first_pass ? Outcome::done_before : Outcome::done_elsewhere;
          if (first_pass) ++report.already_done;
          out << label
              << (first_pass ? "  done already (" + dir.string() + ")\n"
                             : "  finished by another m2bench process\n");
          continue;
        }
        check_device(run);
        check_memory(run);
        std::optional<RunClaim> claim = RunClaim::try_claim(dir);
        // Checked again under the claim: another process may have finished it meanwhile.
        if (!claim || done(dir)) {
          outcome = claim ? Outcome::done_elsewhere : Outcome::held;
          if (first_pass) out << label << "  taken by another m2bench process, skipped\n";
          continue;
        }
        if (const auto& dead = claim->taken_from()) {
          const bool ended = dead->worker.host == host_name() && !process_alive(dead->worker);
          out << fmt::format("{}  taken over from {}, {}\n", label, describe(dead->worker),
                             ended ? "which has ended"
                                   : "whose heartbeat stopped " +
                                         format_duration(unix_now() - dead->heartbeat) + " ago");
        } else if (!first_pass) {
          out << label << "  left unfinished by a process that ended; taking it\n";
        }
        took_any = true;
        std::optional<RunSummary> summary = train_claimed(run, *claim, label, options, out);
        if (!summary) {
          outcome = Outcome::pending;
          report.interrupted = true;
          ++report.stopped;
          out << label << "  stopped; "
              << (options.fresh ? "with --fresh it starts over when run again\n"
                                : "the next `m2bench run` resumes it from its checkpoint\n");
          break;
        }
        outcome = Outcome::trained;
        ++(summary->status == "diverged" ? report.diverged : report.finished);
      } catch (const std::exception& e) {
        const std::string what = error_text(e);
        outcome = Outcome::failed;
        report.failures.push_back(fmt::format("{}: {}", run.id, what));
        out << label << "  failed: " << what << "\n";
      }
    }
    if (report.interrupted || !took_any) break;
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    if (outcomes[i] == Outcome::held)
      report.unfinished.push_back(fmt::format("{} ({})", runs[i]->id, label_of(i)));
    if (outcomes[i] == Outcome::held || outcomes[i] == Outcome::done_elsewhere)
      ++report.claimed_elsewhere;
  }
  return report;
}

}  // namespace m2b
