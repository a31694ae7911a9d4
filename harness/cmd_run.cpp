// `m2bench run SUITE.yaml`: trains and evaluates every run of a suite that is not done yet.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <stdexcept>

#include <fmt/format.h>
#include <torch/torch.h>

#include "harness/cli.h"
#include "harness/results.h"
#include "harness/runner.h"
#include "harness/suite.h"

namespace m2b::cli {

namespace {

std::atomic<bool> g_interrupted{false};

// The first Ctrl-C stops after the current step with a checkpoint; a second one kills at once.
extern "C" void on_interrupt(int) {
  g_interrupted = true;
  std::signal(SIGINT, SIG_DFL);
}

struct RunArgs {
  std::string suite;
  std::string results = "results";
  bool fresh = false;
  std::vector<std::string> only;
  int threads = 0;
};

void run_command(const RunArgs& args) {
  const Suite suite = load_suite(args.suite);
  if (args.threads > 0) torch::set_num_threads(args.threads);
  SuiteRunOptions options;
  options.results_root = args.results;
  options.fresh = args.fresh;
  options.only = args.only;
  options.out = &std::cout;
  options.live_progress = ::isatty(STDOUT_FILENO) == 1;
  options.interrupted = [] { return g_interrupted.load(); };
  std::signal(SIGINT, on_interrupt);
  const SuiteRunReport report = run_suite(suite, options);
  std::signal(SIGINT, SIG_DFL);

  fmt::print("\nsuite {}: {} finished, {} diverged, {} done before, {} taken by other processes",
             suite.name, report.finished, report.diverged, report.already_done,
             report.claimed_elsewhere);
  if (!report.failures.empty()) fmt::print(", {} failed", report.failures.size());
  fmt::print("\nresults: {}\ntables:  m2bench table {}{}\n",
             suite_dir(args.results, suite.name).string(), args.suite,
             args.results == "results" ? "" : " --results " + args.results);
  for (const std::string& failure : report.failures) fmt::print(stderr, "failed: {}\n", failure);
  if (report.interrupted) throw CLI::RuntimeError(130);
  if (!report.failures.empty()) throw CLI::RuntimeError(1);
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand(
      "run", "Train and evaluate every run of a suite that is not done yet: finished runs are "
             "skipped, stopped ones resume from their checkpoint, and runs another m2bench "
             "process holds are left to it");
  cmd->add_option("suite", args->suite, "The suite YAML, e.g. experiments/quickstart.yaml")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--results", args->results, "Results folder (holds <suite>/<run-id>/)")
      ->capture_default_str();
  cmd->add_flag("--fresh", args->fresh,
                "Retrain runs that were done before this command began (processes started "
                "together with --fresh split the suite); each new run replaces the old one only "
                "once its summary is written");
  cmd->add_option("--only", args->only, "Run only this run id (or a unique prefix); repeatable");
  cmd->add_option("--threads", args->threads,
                  "CPU threads per run (default: LibTorch's choice, one per core). Use 1 when "
                  "several processes share the cores: small models gain little from more, and "
                  "oversubscribed threads can slow training many times over")
      ->check(CLI::Range(1, 4096));
  cmd->callback([args] { run_command(*args); });
}

}  // namespace m2b::cli
