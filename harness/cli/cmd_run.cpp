// `m2bench run SUITE.yaml`: trains and evaluates every run of a suite that is not done yet.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <stdexcept>

#include <fmt/format.h>
#include <torch/torch.h>

#include "harness/cli/cli.h"
#include "harness/cli/workers.h"
#include "harness/config/suite.h"
#include "harness/results/results.h"
#include "harness/train/runner.h"

namespace m2b::cli {

namespace {

// The signal that asked the suite to stop, or 0.
std::atomic<int> g_stop_signal{0};

// The first Ctrl-C (SIGINT), SIGTERM (`kill`, `timeout`, Slurm's preemption) or SIGHUP (the
// terminal went away) stops after the current step with a checkpoint; a second one of the same
// kind kills at once.
extern "C" void on_stop_signal(int signal) {
  g_stop_signal = signal;
  std::signal(signal, SIG_DFL);
}

// Exit status when runs are left unfinished because other processes hold them: EX_TEMPFAIL, "try
// again later", rather than a failure.
constexpr int kExitUnfinished = 75;

struct RunArgs {
  std::string suite;
  std::string results = "results";
  bool fresh = false;
  std::vector<std::string> only;
  int threads = 0;
  bool no_cuda_graphs = false;
  std::string gpus;
  int per_gpu = 1;
  int workers = 0;
};

// The `run` command line each worker runs: this one's, less --gpus, --per-gpu and --workers.
// --workers processes share the cores: one thread each unless --threads says otherwise.
std::vector<std::string> worker_args(const RunArgs& args) {
  std::vector<std::string> out = {"run", args.suite, "--results", args.results};
  if (args.fresh) out.push_back("--fresh");
  for (const std::string& id : args.only) out.insert(out.end(), {"--only", id});
  const int threads = args.threads > 0 ? args.threads : args.workers > 0 ? 1 : 0;
  if (threads > 0) out.insert(out.end(), {"--threads", std::to_string(threads)});
  if (args.no_cuda_graphs) out.push_back("--no-cuda-graphs");
  return out;
}

void run_command(const RunArgs& args) {
  const Suite suite = load_suite(args.suite);
  if (!args.gpus.empty() || args.workers > 0) {
    const auto slots =
        args.workers > 0 ? cpu_slots(args.workers) : gpu_slots(parse_gpus(args.gpus), args.per_gpu);
    const int status = run_workers(slots, worker_args(args), std::cout);
    if (status != 0) throw CLI::RuntimeError(status);
    return;
  }
  if (args.threads > 0) torch::set_num_threads(args.threads);
  SuiteRunOptions options;
  options.results_root = args.results;
  options.fresh = args.fresh;
  options.only = args.only;
  options.out = &std::cout;
  options.live_progress = ::isatty(STDOUT_FILENO) == 1;
  options.interrupted = [] { return g_stop_signal.load() != 0; };
  options.cuda_graphs = !args.no_cuda_graphs;
  g_stop_signal = 0;
  for (int signal : kStopSignals) std::signal(signal, on_stop_signal);
  stop_with_parent();
  const auto start = std::chrono::steady_clock::now();
  const SuiteRunReport report = run_suite(suite, options);
  const double hours =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 3600;
  for (int signal : kStopSignals) std::signal(signal, SIG_DFL);

  fmt::print("\nsuite {}: {} finished, {} diverged, {} done before, {} taken by other processes",
             suite.name, report.finished, report.diverged, report.already_done,
             report.claimed_elsewhere);
  if (report.stopped > 0) fmt::print(", {} stopped mid-way", report.stopped);
  if (!report.failures.empty()) fmt::print(", {} failed", report.failures.size());
  const int trained = report.finished + report.diverged;
  if (trained > 0)
    fmt::print("\n{} runs trained in {:.1f} min: {:.0f} runs per hour for this process", trained,
               hours * 60, trained / hours);
  fmt::print("\nresults: {}\ntables:  m2bench table {}{}\n",
             suite_dir(args.results, suite.name).string(), args.suite,
             args.results == "results" ? "" : " --results " + args.results);
  std::cout.flush();
  for (const std::string& failure : report.failures) std::cerr << "failed: " << failure << "\n";
  // The shell's convention for a process ended by a signal, though this one ended cleanly.
  if (report.interrupted) throw CLI::RuntimeError(128 + g_stop_signal.load());
  if (!report.unfinished.empty())
    std::cerr << "unfinished, held by other m2bench processes (run this again once they end):\n";
  for (const std::string& run : report.unfinished) std::cerr << "  " << run << "\n";
  if (!report.failures.empty()) throw CLI::RuntimeError(1);
  if (!report.unfinished.empty()) throw CLI::RuntimeError(kExitUnfinished);
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand(
      "run",
      "Train and evaluate every run of a suite that is not done yet: finished runs are "
      "skipped, stopped ones resume from their checkpoint, and runs another m2bench "
      "process holds are left to it");
  add_suite_arguments(cmd, args->suite, args->results);
  cmd->add_flag("--fresh", args->fresh,
                "Retrain runs that were done before this command began (processes started "
                "together with --fresh split the suite); each new run replaces the old one only "
                "once its summary is written (a replacement a kill cut short is finished by the "
                "next `m2bench run`)");
  cmd->add_option("--only", args->only, "Run only this run id (or a unique prefix); repeatable");
  cmd->add_option("--threads", args->threads,
                  "CPU threads per run (default: LibTorch's choice, one per core). Use 1 when "
                  "several processes share the cores: small models gain little from more, and "
                  "oversubscribed threads can slow training many times over")
      ->transform(integer_in(1, 4096));
  cmd->add_flag("--no-cuda-graphs", args->no_cuda_graphs,
                "On a GPU, launch every kernel of a training step eagerly instead of replaying "
                "the step from a CUDA graph (slower; for debugging and comparison)");
  cmd->add_option("--gpus", args->gpus,
                  "Train with one worker process per GPU, each seeing only its GPU "
                  "(CUDA_VISIBLE_DEVICES): all (CUDA_VISIBLE_DEVICES's GPUs where it is set, "
                  "else every GPU found), or a comma list such as 0,2,5");
  cmd->add_option("--per-gpu", args->per_gpu,
                  "Worker processes per GPU with --gpus; small models fill a GPU better with "
                  "several (with CUDA MPS their kernels run at once)")
      ->transform(integer_in(1, 64))
      ->needs("--gpus");
  cmd->add_option("--workers", args->workers,
                  "Train with this many worker processes that keep this one's devices, one "
                  "thread each unless --threads is given: for a suite that trains on the CPU, "
                  "about one per core (runs of small models gain little from more threads)")
      ->transform(integer_in(1, 256))
      ->excludes("--gpus");
  cmd->callback([args] { run_command(*args); });
}

}  // namespace m2b::cli
