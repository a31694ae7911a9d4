#include "tasks/registry.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/typed_text.h"
#include "tasks/code_execution.h"
#include "tasks/entity_tracking.h"
#include "tasks/word_problem.h"

namespace m2b::tasks {

namespace {

const char* const kWordProblem =
    "Input: group elements g_1..g_L; target at every position (all scored): the running product "
    "P_t = g_t o P_{t-1}, i.e. P_{t-1} applied first, P_t(i) = g_t(P_{t-1}(i)).";

// Every word problem takes `bos`; off by default and then left out of run ids, which predate it.
TaskInfo word_problem(std::string name, const std::string& what, std::vector<OptionSpec> params,
                      std::function<Group(const Options&)> group) {
  OptionSpec bos{"bos", OptionType::Bool, false,
                 "prepend an unscored beginning-of-sequence token <bos> (the DeltaProduct "
                 "protocol); an example of length L then has L + 1 tokens"};
  bos.omit_when_default = true;
  params.push_back(std::move(bos));
  auto factory = [name, group](const Options& o) -> std::unique_ptr<Task> {
    return std::make_unique<WordProblemTask>(name, group(o), o.get_bool("bos"));
  };
  return {std::move(name), what + " " + kWordProblem, std::move(params), factory};
}

std::vector<TaskInfo> build_infos() {
  std::vector<TaskInfo> infos;
  infos.push_back(word_problem(
      "s3",
      "Word problem over S3, the 6 permutations of 3 points in one-line notation (\"120\" sends "
      "0->1, 1->2, 2->0): the paper's headline task.",
      {}, [](const Options&) { return symmetric_group(3); }));
  infos.push_back(word_problem(
      "s5", "Word problem over S5 (the 120 permutations of 5 points, one-line notation).", {},
      [](const Options&) { return symmetric_group(5); }));
  infos.push_back(word_problem(
      "a5",
      "Word problem over A5 (the 60 even permutations of 5 points, one-line notation; the "
      "smallest non-solvable group).",
      {}, [](const Options&) { return alternating_group(5); }));
  infos.push_back(word_problem(
      "cyclic", "Word problem over Z_n: elements 0..n-1, the product is their sum mod n.",
      {{"n", OptionType::Int, int64_t{5}, "order of the cyclic group Z_n", 2, 256}},
      [](const Options& o) { return cyclic_group(static_cast<int>(o.get_int("n"))); }));
  infos.push_back(word_problem(
      "parity", "Word problem over Z_2: bits 0/1, the target is the running parity (XOR).", {},
      [](const Options&) { return cyclic_group(2); }));
  infos.push_back({"entity_tracking",
                   "Boxes holding at most one object each: an initial assignment (oX bK pairs), then per step "
                   "one operation (move oX bK | swap bJ bK | remove oX - | put oX bK) and a query slot "
                   "(where oX -> box or out | what bK -> object or empty | - -); only answers are scored. "
                   "Length = number of operations.",
                   EntityTrackingTask::option_specs(),
                   [](const Options& o) -> std::unique_ptr<Task> { return std::make_unique<EntityTrackingTask>(o); }});
  infos.push_back({"code_execution",
                   "Straight-line programs over variables a, b, ... (start at 0, values mod modulus): per step one "
                   "statement (x = c | x = y | x = y + c | x += y | swap x y, padded with - to 5 tokens) and a "
                   "query slot (print x -> its value | - -); only printed values are scored. Length = number of statements.",
                   CodeExecutionTask::option_specs(),
                   [](const Options& o) -> std::unique_ptr<Task> { return std::make_unique<CodeExecutionTask>(o); }});
  return infos;
}

}  // namespace

const std::vector<TaskInfo>& task_infos() {
  static const std::vector<TaskInfo> infos = build_infos();
  return infos;
}

const TaskInfo& find_task(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& info : task_infos()) {
    if (info.name == name) return info;
    names.push_back(info.name);
  }
  std::sort(names.begin(), names.end());
  throw TaskError(
      fmt::format("unknown task '{}' (valid: {})", excerpt(name), fmt::join(names, ", ")));
}

Options resolve_task_params(const std::string& name,
                            const std::map<std::string, OptionValue>& params) {
  return resolve_options("task " + name, find_task(name).params, params);
}

std::unique_ptr<Task> make_task(const std::string& name,
                                const std::map<std::string, OptionValue>& params) {
  return find_task(name).factory(resolve_task_params(name, params));
}

std::map<std::string, OptionValue> parse_task_params(const std::string& name,
                                                     const std::vector<std::string>& assignments) {
  const TaskInfo& info = find_task(name);
  std::map<std::string, OptionValue> out;
  for (const auto& a : assignments) {
    const size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0)
      throw TaskError(fmt::format("task {}: parameter '{}' is not name=value", name, a));
    const std::string key = a.substr(0, eq), text = a.substr(eq + 1);
    OptionValue value = text;
    for (const auto& spec : info.params)
      if (spec.name == key) value = parse_option_value(spec.type, text);
    if (!out.emplace(key, value).second)
      throw TaskError(fmt::format("task {}: parameter '{}' given twice", name, key));
  }
  return out;
}

}  // namespace m2b::tasks
