#pragma once
// The task registry: every task by name, with its description and parameter schema, so the CLI,
// the suite validator and the trainer build tasks the same way. A task is one file in tasks/ that
// defines a Task subclass and registers it with M2B_REGISTER_TASK; nothing else lists tasks.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/options.h"
#include "tasks/task.h"

namespace m2b::tasks {

struct TaskInfo {
  std::string name, description;
  std::vector<OptionSpec> params;
  std::function<std::unique_ptr<Task>(const Options&)> factory;  // gets resolved params
};

const std::vector<TaskInfo>& task_infos();  // by name
// Throws TaskError "unknown task 'x' (valid: a5, code_execution, ...)".
const TaskInfo& find_task(const std::string& name);
// Resolves `params` against the task's schema (OptionError names the parameter, what was
// given and what is valid) and builds it (TaskError for bad combinations of parameters).
std::unique_ptr<Task> make_task(const std::string& name,
                                const std::map<std::string, OptionValue>& params);
// The task's parameters with every default filled in, e.g. for recording what a run used.
Options resolve_task_params(const std::string& name,
                            const std::map<std::string, OptionValue>& params);

// Parses command-line assignments "name=value" into typed values by the task's schema (an
// unknown name or unparsable value is passed on as text, for resolve_options to reject).
std::map<std::string, OptionValue> parse_task_params(const std::string& name,
                                                     const std::vector<std::string>& assignments);

namespace detail {
// Adds a task at static initialisation; a name registered twice is a std::logic_error.
struct TaskRegistration {
  explicit TaskRegistration(TaskInfo info);
};
}  // namespace detail

// The registration objects live in a static library; tasks/CMakeLists.txt links it whole
// (m2_tasks_all) so the linker keeps them.
#define M2B_REGISTER_TASK(ident, ...) \
  static ::m2b::tasks::detail::TaskRegistration m2b_task_registration_##ident { __VA_ARGS__ }

}  // namespace m2b::tasks
