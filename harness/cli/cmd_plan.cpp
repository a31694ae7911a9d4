// `m2bench plan SUITE.yaml`: the runs a suite expands into and what the results store holds for
// each, without training anything.
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/cli/cli.h"
#include "harness/config/suite.h"
#include "harness/results/results.h"
#include "harness/train/progress.h"

namespace m2b::cli {

namespace {

struct PlanArgs {
  std::string suite;
  std::string results = "results";
};

void print_plan(const PlanArgs& args) {
  Suite suite = load_suite(args.suite);
  auto lengths = [](const RunConfig& run) {
    return fmt::format("{}", fmt::join(run.task.eval_lengths, ","));
  };
  size_t model_width = 5, task_width = 4, eval_width = 12;
  for (const RunConfig& run : suite.runs) {
    model_width = std::max(model_width, run.model_name.size());
    task_width = std::max(task_width, run.task.name.size());
    eval_width = std::max(eval_width, lengths(run).size());
  }
  const std::string row = fmt::format(
      "{{:<12}}  {{:<{}}}  {{:>6}}  {{:<{}}}  {{:>4}}  {{:>9}}  {{:<{}}}  {{:>7}}  {{}}\n",
      model_width, task_width, eval_width);
  std::cout << fmt::format("suite {} ({}): {} runs, results in {}\n", suite.name, args.suite,
                           suite.runs.size(), suite_dir(args.results, suite.name).string());
  std::cout << fmt::format(fmt::runtime(row), "id", "model", "params", "task", "seed", "train",
                           "eval lengths", "steps", "result");
  std::map<RunState, int> counts;
  std::vector<std::string> problems;
  for (const RunConfig& run : suite.runs) {
    const StoredRun stored = read_stored_run(run_dir(args.results, run));
    const RunState state = stored.state;
    ++counts[state];
    if (state == RunState::invalid) problems.push_back(stored.problem);
    std::cout << fmt::format(
        fmt::runtime(row), run.id, run.model_name,
        format_count(static_cast<double>(run.model.parameter_count())), run.task.name, run.seed,
        fmt::format("{}-{}", run.task.train_min_length, run.task.train_max_length), lengths(run),
        run.train.steps, to_string(state));
  }
  std::cout << fmt::format("{} finished, {} diverged, {} started (no summary yet), {} missing{}\n",
                           counts[RunState::finished], counts[RunState::diverged],
                           counts[RunState::started], counts[RunState::missing],
                           problems.empty() ? "" : fmt::format(", {} invalid", problems.size()));
  for (const std::string& problem : problems) std::cout << "invalid: " << problem << "\n";
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto args = std::make_shared<PlanArgs>();
  CLI::App* cmd = app.add_subcommand(
      "plan",
      "List the runs a suite expands into (id, model and its parameter count, task, seed, "
      "lengths, steps) and whether each has a result, without training anything");
  add_suite_arguments(cmd, args->suite, args->results);
  cmd->callback([args] { print_plan(*args); });
}

}  // namespace m2b::cli
