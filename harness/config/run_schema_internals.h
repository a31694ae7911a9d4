#pragma once
// Internals of the run schema (run_schema.cpp) that the suite loader (suite.cpp) and the tables'
// reading of config.yaml (harness/results/report.cpp) share: YAML nodes that remember their file
// and key path, so that every error can point at its source, and a run described as key-path
// assignments before it is resolved.
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "harness/config/run_config.h"
#include "harness/config/run_schema.h"

namespace m2b::config {

struct Located {
  YAML::Node node;
  std::shared_ptr<const std::string> file;  // as the user named it (or as an include resolved)
  std::string path;                         // the run key it sets, e.g. "train.lr"

  Located() = default;
  Located(YAML::Node n, std::shared_ptr<const std::string> f, std::string p)
      : node(std::move(n)), file(std::move(f)), path(std::move(p)) {}
  Located(const Located&) = default;
  // YAML::Node's operator= writes into the node it refers to (every other reference to that
  // node sees the change); assigning a Located must instead make it refer to another node.
  Located& operator=(const Located& other) {
    node.reset(other.node);
    file = other.file;
    path = other.path;
    return *this;
  }
  Located with_path(std::string new_path) const { return {node, file, std::move(new_path)}; }
};

// Throws ConfigError "FILE:LINE:COLUMN: PATH: message" (PATH left out when empty).
[[noreturn]] void fail(const Located& where, const std::string& message);
// A value as messages show it: numbers and booleans as written, text in quotes, "a list", ...
std::string shown(const YAML::Node& node);

// Reads and parses a YAML file; `source` names it in messages. Throws ConfigError for syntax.
Located parse_yaml(const std::string& text, const std::string& source);

struct Entry {
  Located key, value;  // key.node is the key scalar: unknown keys are reported at the key
};
// The entries of a mapping in file order; fails unless `map` is a mapping.
std::vector<Entry> entries(const Located& map, const std::string& what);

// A run before resolution: each run key path set so far, with the node that set it.
using Assignments = std::map<std::string, Located>;
// Sets run key `path` (dotted, e.g. "train.lr" or "task") to `value`: a group (task, train,
// task.params) takes a mapping and sets each of its keys, merging with what is set; a leaf
// records the node. An unknown key fails at `key`, naming the valid ones.
void assign(const std::string& path, const Located& key, const Located& value, Assignments& out);
// Throws at `key` unless `path` is a run key that takes a single value (not a group).
void require_leaf(const std::string& path, const Located& key);

using ModelLibrary = std::map<std::string, Located>;  // model name -> its mapping

// Resolves and validates every field (defaults filled in from TaskSpec, TrainSpec, the task's
// and the mixers' option specs) and sets model_name to the chosen model's name (empty for an
// inline model without one). `whole` is where a missing key is reported.
RunConfig resolve_run(const Assignments& values, const ModelLibrary& models, const Located& whole);

// Validates the model `name` of the library on its own, as a run that chose it without changing
// it would; errors point at models.NAME.<key>. For a model that no run uses, which would
// otherwise never be looked at.
void validate_model(const std::string& name, const ModelLibrary& library);

// Sets canonical_yaml and id from the rest.
void finish(RunConfig& run);

}  // namespace m2b::config
