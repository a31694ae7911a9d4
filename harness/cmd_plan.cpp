// `m2bench plan SUITE.yaml`: the runs a suite expands into and what the results store holds for
// each, without training anything.
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/cli.h"
#include "harness/results.h"
#include "harness/suite.h"

namespace m2b::cli {

namespace {

struct PlanArgs {
  std::string suite;
  std::string results = "results";
};

void print_plan(const PlanArgs& args) {
  Suite suite = load_suite(args.suite);
  std::map<RunState, int> counts;
  size_t model_width = 5;
  for (const RunConfig& run : suite.runs) model_width = std::max(model_width, run.model_name.size());
  std::cout << fmt::format("suite {} ({}): {} runs, results in {}\n", suite.name, args.suite,
                           suite.runs.size(), suite_dir(args.results, suite.name).string());
  std::cout << fmt::format("{:<12}  {:<{}}  {:<16}  {:>4}  {:>9}  {:<18}  {:>7}  {}\n", "id", "model",
                           model_width, "task", "seed", "train", "eval lengths", "steps", "result");
  for (const RunConfig& run : suite.runs) {
    RunState state = run_state(run_dir(args.results, run));
    ++counts[state];
    std::cout << fmt::format(
        "{:<12}  {:<{}}  {:<16}  {:>4}  {:>9}  {:<18}  {:>7}  {}\n", run.id, run.model_name,
        model_width, run.task.name, run.seed,
        fmt::format("{}-{}", run.task.train_min_length, run.task.train_max_length),
        fmt::format("{}", fmt::join(run.task.eval_lengths, ",")), run.train.steps, to_string(state));
  }
  std::cout << fmt::format("{} finished, {} diverged, {} started (no summary yet), {} missing\n",
                           counts[RunState::finished], counts[RunState::diverged],
                           counts[RunState::started], counts[RunState::missing]);
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto args = std::make_shared<PlanArgs>();
  CLI::App* cmd = app.add_subcommand(
      "plan", "List the runs a suite expands into (id, model, task, seed, lengths, steps) and "
              "whether each has a result, without training anything");
  cmd->add_option("suite", args->suite, "the suite file, e.g. experiments/quickstart.yaml")->required();
  cmd->add_option("--results", args->results, "the results root (default: results)");
  cmd->callback([args] { print_plan(*args); });
}

}  // namespace m2b::cli
