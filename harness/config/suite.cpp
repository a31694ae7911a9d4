#include "harness/config/suite.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/config/run_schema_internals.h"

namespace m2b {

namespace fs = std::filesystem;
using namespace config;

namespace {

const std::vector<std::string> kSuiteKeys = {"suite",    "description", "include",  "models",
                                             "defaults", "grid",        "overrides"};
const std::vector<std::string> kIncludedKeys = {"include", "models"};

// Grid keys that do not name a table row: seeds are averaged, tasks and training ranges get
// tables of their own, and the model is the row's name already.
const std::vector<std::string> kNotInRowName = {"model", "seed", "task.name",
                                                "task.train_min_length", "task.train_max_length"};

bool is_one_of(const std::string& name, const std::vector<std::string>& names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string key_of(const Entry& e) { return e.key.node.Scalar(); }

// Follows include: and collects models:, failing at the include that cannot be read or loops.
class ModelLoader {
 public:
  ModelLibrary library;
  std::vector<std::string> suite_models;  // those defined in the suite file itself

  void load_file(const fs::path& path, const Located* included_at) {
    fs::path canonical = fs::weakly_canonical(path);
    if (std::find(stack_.begin(), stack_.end(), canonical) != stack_.end())
      fail(*included_at, fmt::format("include loop: '{}' is already being read (through {})",
                                     path.string(), fmt::join(stack_names_, " -> ")));
    // A folder reads as empty and a FIFO would block until someone writes to it.
    std::error_code error;
    const fs::file_status status = fs::status(path, error);
    if (fs::exists(status) && !fs::is_regular_file(status)) {
      const std::string what = fs::is_directory(status) ? "a folder" : "not a regular file";
      if (!included_at)
        throw ConfigError(fmt::format("{}: is {}, not a suite file", path.string(), what));
      fail(*included_at,
           fmt::format("'{}' is {}, not a YAML file (looked at {})",
                       excerpt(included_at->node.Scalar()), what, canonical.string()));
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      if (!included_at)
        throw ConfigError(fmt::format("{}: cannot read the suite file", path.string()));
      fail(*included_at, fmt::format("cannot read '{}' (looked for {})",
                                     excerpt(included_at->node.Scalar()), canonical.string()));
    }
    std::ostringstream text;
    text << in.rdbuf();
    Located root = parse_yaml(text.str(), path.lexically_normal().string());
    if (root.node.IsNull()) root.node.reset(YAML::Node(YAML::NodeType::Map));
    stack_.push_back(canonical);
    stack_names_.push_back(path.string());
    const auto& allowed = included_at ? kIncludedKeys : kSuiteKeys;
    for (const Entry& e : entries(
             root, included_at ? "a mapping with models: and include:" : "a suite (a mapping)")) {
      std::string key = key_of(e);
      if (!is_one_of(key, allowed))
        fail(e.key.with_path(""),
             fmt::format("unknown key '{}' (valid{}: {})", excerpt(key),
                         included_at ? " in an included file" : "", fmt::join(allowed, ", ")));
      if (key == "include") load_includes(e.value, path);
      if (key == "models") add_models(e.value, !included_at);
    }
    stack_.pop_back();
    stack_names_.pop_back();
    if (!included_at) suite_root = root;
  }

  Located suite_root;

 private:
  void load_includes(const Located& value, const fs::path& from) {
    std::vector<Located> files;
    if (value.node.IsSequence()) {
      for (size_t i = 0; i < value.node.size(); ++i)
        files.push_back({value.node[i], value.file, fmt::format("include[{}]", i)});
    } else {
      files.push_back(value);
    }
    for (const Located& file : files) {
      if (!file.node.IsScalar() || file.node.Scalar().empty())
        fail(file, fmt::format("expected a file name or a list of them, got {}", shown(file.node)));
      load_file(from.parent_path() / file.node.Scalar(), &file);
    }
  }

  void add_models(const Located& value, bool in_suite_file) {
    for (const Entry& e : entries(value, "a mapping of model names to models")) {
      std::string name = key_of(e);
      if (in_suite_file) suite_models.push_back(name);
      auto [it, added] = library.emplace(name, e.value);
      if (!added) {
        const YAML::Mark first = it->second.node.Mark();
        fail(e.key, fmt::format("model '{}' is defined twice (first at {}:{}:{})", excerpt(name),
                                *it->second.file, first.line + 1, first.column + 1));
      }
    }
  }

  std::vector<fs::path> stack_;
  std::vector<std::string> stack_names_;
};

struct GridAxis {
  Located key;                  // path = the run key
  std::vector<Located> values;  // each with path = the run key
};

struct Override {
  std::vector<std::pair<std::string, Located>> when;  // run key -> the value it must have
  Located set;                                        // a mapping of run keys
  Located item;                                       // the override, for errors
};

std::string read_suite_name(const Located& value) {
  std::string name = value.node.IsScalar() ? value.node.Scalar() : "";
  bool ok =
      !name.empty() && name != "." && name != ".." &&
      std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
      });
  if (!ok)
    fail(value, fmt::format("expected a name of letters, digits, '_', '-' and '.' (it names "
                            "results/<suite>/), got {}",
                            shown(value.node)));
  return name;
}

// Compares a `when` value with what a run has: as numbers where both read as numbers.
bool same_value(const YAML::Node& a, const YAML::Node& b) {
  if (!a.IsScalar() || !b.IsScalar()) return false;
  char* end_a = nullptr;
  char* end_b = nullptr;
  const std::string &x = a.Scalar(), &y = b.Scalar();
  double u = std::strtod(x.c_str(), &end_a), v = std::strtod(y.c_str(), &end_b);
  bool numbers = !x.empty() && !y.empty() && *end_a == '\0' && *end_b == '\0';
  return numbers ? u == v : x == y;
}

// The value a run has at `path` for `when`: a named model's name stands for the model. None
// where the run sets no such key, or (an inline model without a name) has no single value.
std::optional<YAML::Node> value_at(const Assignments& values, const std::string& path) {
  auto it = values.find(path);
  if (it == values.end()) return std::nullopt;
  const YAML::Node& have = it->second.node;
  if (path == "model" && have.IsMap()) {
    if (!have["name"]) return std::nullopt;
    return have["name"];
  }
  return have;
}

// An override that no run matches is a typo in its `when` (a model's name, a value the grid does
// not hold): it names the first wanted value that no run has, with the values the runs have. Runs
// take every combination of their scalar values, so only where a value is a mapping (a grid of
// inline models) may each be found and the override still match none.
[[noreturn]] void fail_unmatched(const Override& o,
                                 const std::map<std::string, std::vector<YAML::Node>>& seen) {
  for (const auto& [path, wanted] : o.when) {
    const std::vector<YAML::Node>& have = seen.at(path);
    if (std::none_of(have.begin(), have.end(),
                     [&](const YAML::Node& v) { return same_value(v, wanted.node); })) {
      std::vector<std::string> texts;
      for (const YAML::Node& v : have) texts.push_back(v.IsScalar() ? v.Scalar() : shown(v));
      fail(wanted.with_path(path),
           fmt::format("no run has {} ({}), so this override matches none", shown(wanted.node),
                       texts.empty() ? "no run has a value there it can compare"
                                     : fmt::format("the runs have: {}", fmt::join(texts, ", "))));
    }
  }
  fail(o.item, "matches no run");
}

std::string row_suffix(const std::vector<GridAxis>& grid, const std::vector<size_t>& choice) {
  std::string suffix;
  for (size_t a = 0; a < grid.size(); ++a) {
    const GridAxis& axis = grid[a];
    // Even a key of one value: a value added to its list later must leave the runs there are
    // their names, and so their ids (the row name is in the hashed config).
    if (is_one_of(axis.key.path, kNotInRowName)) continue;
    const YAML::Node& v = axis.values[choice[a]].node;
    suffix += v.IsScalar() ? fmt::format(" {}={}", axis.key.path, v.Scalar())
                           : fmt::format(" {}#{}", axis.key.path, choice[a] + 1);
  }
  return suffix;
}

// Every run of a suite is resolved in memory before anything runs: a grid past this many
// combinations is a mistake (a million took plan minutes and gigabytes), not a sweep.
constexpr double kMaxGridRuns = 10'000;

void check_grid_size(const std::vector<GridAxis>& grid, const Located& where) {
  double combinations = 1;
  std::vector<std::string> sizes;
  for (const GridAxis& axis : grid) {
    combinations *= static_cast<double>(axis.values.size());
    sizes.push_back(std::to_string(axis.values.size()));
  }
  if (combinations > kMaxGridRuns)
    fail(where, fmt::format("{:.0f} combinations ({}), more than {:.0f} runs; shorten its lists "
                            "or split the suite",
                            combinations, fmt::join(sizes, " x "), kMaxGridRuns));
}

}  // namespace

Suite load_suite(const fs::path& path) {
  ModelLoader loader;
  loader.load_file(path, nullptr);
  const Located& root = loader.suite_root;

  Suite suite;
  suite.path = path;
  Assignments defaults;
  std::vector<GridAxis> grid;
  std::vector<Override> overrides;
  std::set<std::string> set_paths;  // run keys that defaults or grid set: what `when` may test
  std::optional<Located> grid_node;
  bool named = false;
  for (const Entry& e : entries(root, "a suite (a mapping)")) {
    std::string key = key_of(e);
    if (key == "suite") {
      suite.name = read_suite_name(e.value);
      named = true;
    } else if (key == "defaults") {
      for (const Entry& d : entries(e.value.with_path(""), "a mapping of run keys"))
        assign(d.key.path, d.key, d.value, defaults);
      for (const auto& [p, v] : defaults) set_paths.insert(p);
    } else if (key == "grid") {
      grid_node = e.value;
      for (const Entry& g : entries(e.value.with_path(""), "a mapping of run keys to lists")) {
        if (!g.value.node.IsSequence() || g.value.node.size() == 0)
          fail(g.value,
               fmt::format("expected a non-empty list of values, got {}", shown(g.value.node)));
        GridAxis axis{g.key, {}};
        for (size_t i = 0; i < g.value.node.size(); ++i) {
          Located value{g.value.node[i], g.value.file, g.key.path};
          Assignments probe;  // checks the key and the value's shape where the user wrote them
          assign(g.key.path, g.key, value, probe);
          for (const auto& [p, v] : probe) set_paths.insert(p);
          // 1e-2 beside 0.01 would train the same run twice under two row names.
          for (const Located& before : axis.values)
            if (same_value(before.node, value.node))
              fail(value, fmt::format("expected distinct values, got {} and {}", shown(before.node),
                                      shown(value.node)));
          axis.values.push_back(value);
        }
        grid.push_back(std::move(axis));
      }
    } else if (key == "overrides") {
      if (!e.value.node.IsSequence())
        fail(e.value, fmt::format("expected a list of {{when: {{...}}, set: {{...}}}}, got {}",
                                  shown(e.value.node)));
      for (size_t i = 0; i < e.value.node.size(); ++i) {
        Located item{e.value.node[i], e.value.file, fmt::format("overrides[{}]", i)};
        Override o{{}, {}, item};
        bool has_set = false;
        for (const Entry& part : entries(item, "a mapping {when: {...}, set: {...}}")) {
          std::string name = key_of(part);
          if (name == "when") {
            for (const Entry& w :
                 entries(part.value.with_path(""), "a mapping of run keys to values")) {
              require_leaf(w.key.path, w.key);
              if (!w.value.node.IsScalar())
                fail(w.value, fmt::format("expected a single value to compare, got {}",
                                          shown(w.value.node)));
              o.when.emplace_back(w.key.path, w.value);
            }
          } else if (name == "set") {
            Assignments probe;
            for (const Entry& s : entries(part.value.with_path(""), "a mapping of run keys"))
              assign(s.key.path, s.key, s.value, probe);
            o.set = part.value.with_path("");
            has_set = true;
          } else {
            fail(part.key, fmt::format("unknown key '{}' (valid: when, set)", excerpt(name)));
          }
        }
        if (!has_set) fail(item, "missing 'set': what the override changes");
        overrides.push_back(std::move(o));
      }
    }
  }
  if (!named) fail(root, "missing 'suite: NAME' (it names results/<suite>/)");
  for (const Override& o : overrides)
    for (const auto& [p, value] : o.when)
      if (!set_paths.count(p))
        fail(value.with_path(p),
             "neither defaults nor grid set this key, so the override could "
             "never match");

  if (grid_node) check_grid_size(grid, *grid_node);

  // Every combination of grid values, the first key outermost.
  std::vector<size_t> choice(grid.size(), 0);
  std::set<std::string> seen, used_models;
  std::vector<bool> matched(overrides.size(), false);
  std::map<std::string, std::vector<YAML::Node>> when_values;  // of the runs, each value once
  while (true) {
    Assignments values = defaults;
    for (size_t a = 0; a < grid.size(); ++a)
      assign(grid[a].key.path, grid[a].key, grid[a].values[choice[a]], values);
    std::vector<const Override*> applied;
    // An override applies where the run has every value of its `when`; the values runs have
    // there are kept for the error of one that applies nowhere.
    for (size_t j = 0; j < overrides.size(); ++j) {
      bool applies = true;
      for (const auto& [path, wanted] : overrides[j].when) {
        const std::optional<YAML::Node> v = value_at(values, path);
        applies = applies && v && same_value(*v, wanted.node);
        std::vector<YAML::Node>& have = when_values[path];
        if (v && std::none_of(have.begin(), have.end(),
                              [&](const YAML::Node& h) { return same_value(h, *v); }))
          have.push_back(*v);
      }
      if (applies) {
        applied.push_back(&overrides[j]);
        matched[j] = true;
      }
    }
    for (const Override* o : applied)
      for (const Entry& s : entries(o->set, "a mapping of run keys"))
        assign(s.key.path, s.key, s.value, values);

    RunConfig run = resolve_run(values, loader.library, root);
    if (values.at("model").node.IsScalar()) used_models.insert(values.at("model").node.Scalar());
    if (run.model_name.empty())
      fail(values.at("model"), "an inline model needs a name: (it is the table row)");
    run.model_name += row_suffix(grid, choice);
    run.suite = suite.name;
    finish(run);
    if (seen.insert(run.id).second) suite.runs.push_back(std::move(run));

    size_t a = grid.size();
    while (a > 0 && ++choice[a - 1] == grid[a - 1].values.size()) choice[--a] = 0;
    if (a == 0) break;
  }
  for (size_t j = 0; j < overrides.size(); ++j)
    if (!matched[j]) fail_unmatched(overrides[j], when_values);
  // A model of the suite file that no run uses is checked too, so that a typo in it does not
  // wait for the day a run uses it. Included files are catalogues: their models are checked
  // where runs use them, with the settings those runs change.
  for (const std::string& name : loader.suite_models)
    if (!used_models.count(name)) validate_model(name, loader.library);
  return suite;
}

}  // namespace m2b
