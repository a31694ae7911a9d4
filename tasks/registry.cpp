#include "tasks/registry.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/typed_text.h"

namespace m2b::tasks {

// Built on first use: registrations run during static initialisation, in no set order.
static std::vector<TaskInfo>& registered_tasks() {
  static std::vector<TaskInfo> infos;
  return infos;
}

detail::TaskRegistration::TaskRegistration(TaskInfo info) {
  std::vector<TaskInfo>& infos = registered_tasks();
  const auto at =
      std::lower_bound(infos.begin(), infos.end(), info.name,
                       [](const TaskInfo& a, const std::string& name) { return a.name < name; });
  if (at != infos.end() && at->name == info.name)
    throw std::logic_error(fmt::format("task '{}' is registered twice", info.name));
  infos.insert(at, std::move(info));
}

const std::vector<TaskInfo>& task_infos() { return registered_tasks(); }

const TaskInfo& find_task(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& info : task_infos()) {
    if (info.name == name) return info;
    names.push_back(info.name);
  }
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
