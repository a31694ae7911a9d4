// `m2bench plot SUITE.yaml|results/<suite>`: regenerates the tables (with --prefix-t as `table`
// has it), then every figure of the suite into plots/<suite>/ (PNG and PDF) with the plot
// scripts and the Python that has matplotlib: accuracy vs evaluation length, training curves,
// prefix-accuracy curves, and the table's rows ranked at 4x (the figure that reads a recipe
// search).
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/cli/build_paths.h"
#include "harness/cli/cli.h"
#include "harness/results/report.h"

extern char** environ;

namespace m2b::cli {

namespace {

namespace fs = std::filesystem;

struct PlotArgs {
  std::string target;
  std::string results = "results";
  std::string out;  // default plots/<suite>
  std::string python;
  std::string scripts = std::string(kSourceDir) + "/plots";
  int64_t prefix_t = 0;  // as `table --prefix-t`: the tables it rewrites keep that section
};

// What the plot scripts exit with when their Python has no matplotlib (NO_MATPLOTLIB in
// plots/m2b_plotting.py): only then is that the message.
constexpr int kExitNoMatplotlib = 3;

// --python, else $M2BENCH_PYTHON, else the Python the build was configured with.
std::string python_of(const PlotArgs& args) {
  if (!args.python.empty()) return args.python;
  if (const char* env = std::getenv("M2BENCH_PYTHON"); env && *env) return env;
  return kConfiguredPython;
}

// The plot script running now, or 0.
std::atomic<pid_t> g_script{0};

// A stop asked of m2bench (kill, timeout, the terminal gone) is asked of its running script
// too, which would otherwise go on drawing after m2bench has exited; then m2bench ends as the
// signal ends it.
extern "C" void stop_with_script(int signal) {
  if (const pid_t script = g_script.load(); script > 0) ::kill(script, signal);
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

void run_script(const std::string& python, const std::vector<std::string>& argv_tail) {
  std::vector<std::string> words = {python};
  words.insert(words.end(), argv_tail.begin(), argv_tail.end());
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  const std::string command = fmt::format("{}", fmt::join(words, " "));
  std::cout << "$ " << command << std::endl;
  pid_t pid;
  for (int signal : kStopSignals) std::signal(signal, stop_with_script);
  int rc = posix_spawnp(&pid, python.c_str(), nullptr, nullptr, argv.data(), environ);
  if (rc != 0) {
    for (int signal : kStopSignals) std::signal(signal, SIG_DFL);
    throw std::runtime_error(
        fmt::format("cannot start {}: {} (give --python or set M2BENCH_PYTHON "
                    "to a Python with matplotlib)",
                    python, std::strerror(rc)));
  }
  g_script = pid;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  g_script = 0;
  for (int signal : kStopSignals) std::signal(signal, SIG_DFL);
  if (WIFEXITED(status) && WEXITSTATUS(status) == kExitNoMatplotlib)
    throw std::runtime_error(
        fmt::format("{} has no matplotlib: give --python or set "
                    "M2BENCH_PYTHON to a Python that has it",
                    python));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(fmt::format(
        "plot script failed ({}): {}; its message is above",
        WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status)) : "killed",
        command));
}

void make_plots(const PlotArgs& args) {
  SuiteTables made = write_suite_tables(args.target, args.results, std::nullopt, args.prefix_t);
  for (const std::string& problem : made.source.problems)
    std::cerr << "m2bench: warning: left out of the table and figures: " << problem << "\n";
  const fs::path out =
      args.out.empty() ? fs::path("plots") / made.source.suite : fs::path(args.out);
  fs::create_directories(out);
  const fs::path scripts = args.scripts;
  for (const char* script :
       {"length_generalisation.py", "training_curves.py", "prefix_accuracy.py", "ranking.py"})
    if (!fs::exists(scripts / script))
      throw std::runtime_error(
          fmt::format("{}: no such plot script (give --scripts DIR)", (scripts / script).string()));
  const std::string python = python_of(args);
  run_script(python, {(scripts / "length_generalisation.py").string(), "--table",
                      (made.source.results_dir / "table.csv").string(), "--out-dir", out.string()});
  run_script(python, {(scripts / "training_curves.py").string(), "--results",
                      made.source.results_dir.string(), "--out-dir", out.string()});
  run_script(python, {(scripts / "prefix_accuracy.py").string(), "--results",
                      made.source.results_dir.string(), "--out-dir", out.string()});
  run_script(python, {(scripts / "ranking.py").string(), "--table",
                      (made.source.results_dir / "table.csv").string(), "--out-dir", out.string()});
}

}  // namespace

void add_plot_command(CLI::App& app) {
  auto args = std::make_shared<PlotArgs>();
  CLI::App* cmd = app.add_subcommand(
      "plot",
      "Regenerate a suite's table and figures (accuracy vs evaluation length; training "
      "curves; prefix accuracy vs t per evaluation length; the rows ranked by accuracy at "
      "4x the training length) into plots/<suite>/ as PNG and PDF");
  cmd->add_option("target", args->target, "a suite file or a results/<suite> folder")->required();
  add_results_option(cmd, args->results, "the results root, for a suite file");
  cmd->add_option("--out", args->out, "where the figures go (default: plots/<suite>)");
  add_prefix_t_option(cmd, args->prefix_t);
  cmd->add_option("--python", args->python,
                  "the Python with matplotlib (default: $M2BENCH_PYTHON, else the one the build "
                  "was configured with)");
  cmd->add_option("--scripts", args->scripts, "the folder of the plot scripts");
  cmd->callback([args] { make_plots(*args); });
}

}  // namespace m2b::cli
