// `m2bench tasks` lists the tasks; `m2bench data` prints examples of one.
#include <iostream>
#include <stdexcept>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "harness/cli/cli.h"
#include "harness/config/run_config.h"
#include "tasks/registry.h"
#include "tasks/render.h"
#include "tasks/split.h"

namespace m2b::cli {

namespace {

// Breaks `text` into lines of at most `width` characters, each starting with `indent`.
std::string wrap(const std::string& text, const std::string& indent, size_t width) {
  std::string out, line;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    if (!line.empty() && indent.size() + line.size() + 1 + word.size() > width) {
      out += indent + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    start = end + 1;
  }
  if (!line.empty()) out += indent + line + "\n";
  return out;
}

nlohmann::ordered_json to_json(const OptionValue& value) {
  return std::visit([](const auto& v) { return nlohmann::ordered_json(v); }, value);
}

std::string params_text(const Options& params) {
  std::string out;
  for (const auto& [name, value] : params.values())
    out += fmt::format("{}{}={}", out.empty() ? "" : " ", name, to_string(value));
  return out.empty() ? "(no parameters)" : out;
}

struct DataArgs {
  std::string task;
  int64_t length = 16;
  int64_t count = 1;
  uint64_t seed = 0;
  std::vector<std::string> params;
  std::string format = "text";
};

void print_data(const DataArgs& args) {
  const auto given = tasks::parse_task_params(args.task, args.params);
  const Options resolved = tasks::resolve_task_params(args.task, given);
  const auto task = tasks::make_task(args.task, given);
  nlohmann::ordered_json params = nlohmann::ordered_json::object();
  for (const auto& [name, value] : resolved.values()) params[name] = to_json(value);
  // One example at a time: the sizes allowed (a million examples of a million steps) would not
  // fit in memory at once.
  for (int64_t i = 0; i < args.count; ++i) {
    const tasks::Example ex = tasks::evaluation_example(*task, args.length, i, args.seed);
    task->check(ex);
    if (args.format == "jsonl") {
      nlohmann::ordered_json line = {{"task", args.task},
                                     {"params", params},
                                     {"length", args.length},
                                     {"seed", args.seed},
                                     {"index", i},
                                     {"inputs", tasks::token_texts(*task, ex.inputs)},
                                     {"input_ids", ex.inputs},
                                     {"targets", tasks::token_texts(*task, ex.targets)},
                                     {"target_ids", ex.targets},
                                     {"scored", ex.scored}};
      std::cout << line.dump() << "\n";
    } else {
      fmt::print("# {} {} | length {} | seed {} | example {} | {} tokens\n{}", args.task,
                 params_text(resolved), args.length, args.seed, i, ex.inputs.size(),
                 tasks::render_text(*task, ex));
    }
  }
}

}  // namespace

void add_tasks_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("tasks", "List the synthetic tasks, their descriptions and parameters");
  cmd->callback([] {
    for (const auto& info : tasks::task_infos()) {
      fmt::print("{}\n{}", info.name, wrap(info.description, "    ", 100));
      fmt::print("{}\n",
                 info.params.empty() ? "  (no parameters)\n" : describe_options(info.params));
    }
  });
}

void add_data_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "data",
      "Print examples of a task. They are the evaluation set of --seed: a run with eval_seed S "
      "evaluates exactly the examples `data --seed S` prints. Every example is checked first.");
  auto args = std::make_shared<DataArgs>();
  cmd->add_option("--task", args->task, "task name (see `m2bench tasks`)")->required();
  cmd->add_option("--length", args->length,
                  "number of state updates (elements, operations, statements)")
      ->transform(integer_in(1, kMaxLength))
      ->capture_default_str();
  cmd->add_option("--count", args->count, "number of examples")
      ->transform(integer_in(1, kMaxExamples))
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "evaluation seed")
      ->transform(unsigned_integer())
      ->capture_default_str();
  cmd->add_option("--param", args->params, "task parameter name=value (repeatable)");
  cmd->add_option("--format", args->format, "text (aligned, scored targets in [brackets]) or jsonl")
      ->check(CLI::IsMember({"text", "jsonl"}))
      ->capture_default_str();
  cmd->callback([args] { print_data(*args); });
}

}  // namespace m2b::cli
