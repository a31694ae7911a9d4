#include "harness/config/run_schema.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/fnv1a.h"
#include "common/typed_text.h"
#include "harness/config/run_schema_internals.h"
#include "models/lm.h"
#include "tasks/registry.h"

namespace m2b {
namespace config {

// ---- locations and messages ----------------------------------------------------------------

void fail(const Located& where, const std::string& message) {
  std::string file = where.file ? *where.file : std::string("<config>");
  const YAML::Mark mark = where.node.Mark();
  std::string place =
      mark.is_null() ? file : fmt::format("{}:{}:{}", file, mark.line + 1, mark.column + 1);
  throw ConfigError(where.path.empty() ? fmt::format("{}: {}", place, message)
                                       : fmt::format("{}: {}: {}", place, where.path, message));
}

std::string shown(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsSequence()) return node.size() == 0 ? "[]" : "a list";
  if (node.IsMap()) return node.size() == 0 ? "{}" : "a mapping";
  const std::string& text = node.Scalar();
  if (parse_number(text) || parse_bool(text)) return excerpt(text);
  return fmt::format("\"{}\"", excerpt(text));
}

// yaml-cpp keeps every pair of a mapping and lookups find one of them, so a key given twice
// (a second `lr:`, a second `defaults:` block) would drop a value without a word.
static void refuse_repeated_keys(const Located& at) {
  if (at.node.IsSequence())
    for (size_t i = 0; i < at.node.size(); ++i)
      refuse_repeated_keys({at.node[i], at.file, at.path});
  if (!at.node.IsMap()) return;
  std::map<std::string, YAML::Mark> seen;
  for (auto it = at.node.begin(); it != at.node.end(); ++it) {
    const std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
    const std::string path = at.path.empty() ? key : at.path + "." + key;
    if (const auto [first, fresh] = seen.emplace(key, it->first.Mark()); !fresh)
      fail({it->first, at.file, path},
           fmt::format("given twice (first at line {})", first->second.line + 1));
    refuse_repeated_keys({it->second, at.file, path});
  }
}

Located parse_yaml(const std::string& text, const std::string& source) {
  const auto load = [&] {
    try {
      return YAML::Load(text);
    } catch (const YAML::ParserException& e) {
      throw ConfigError(fmt::format("{}:{}:{}: not valid YAML: {}", source, e.mark.line + 1,
                                    e.mark.column + 1, e.msg));
    }
  };
  const Located root{load(), std::make_shared<const std::string>(source), ""};
  refuse_repeated_keys(root);
  return root;
}

std::vector<Entry> entries(const Located& map, const std::string& what) {
  if (!map.node.IsMap()) fail(map, fmt::format("expected {}, got {}", what, shown(map.node)));
  std::vector<Entry> out;
  for (auto it = map.node.begin(); it != map.node.end(); ++it) {
    std::string key = it->first.Scalar();
    std::string path = map.path.empty() ? key : map.path + "." + key;
    out.push_back({{it->first, map.file, path}, {it->second, map.file, path}});
  }
  return out;
}

// ---- typed scalars ---------------------------------------------------------------------------

// Valid values of a numeric field, as messages state them: "an integer >= 1", "a number in [0, 1)".
struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;

  bool contains(double x) const {
    return (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi);
  }
  std::string text(bool integer) const {
    std::string kind = integer ? "an integer" : "a number";
    bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
    // 1000000, not 1e+06
    const auto bound = [&](double b) {
      return integer ? fmt::format("{}", static_cast<int64_t>(b)) : fmt::format("{}", b);
    };
    if (has_lo && has_hi)
      return fmt::format("{} in {}{}, {}{}", kind, lo_open ? "(" : "[", bound(lo), bound(hi),
                         hi_open ? ")" : "]");
    if (has_lo) return fmt::format("{} {} {}", kind, lo_open ? ">" : ">=", bound(lo));
    if (has_hi) return fmt::format("{} {} {}", kind, hi_open ? "<" : "<=", bound(hi));
    return kind;
  }
};
static Range at_least(double lo) { return {lo}; }
static Range above(double lo) { return {lo, Range{}.hi, true}; }
static Range between(double lo, double hi, bool hi_open = false) {
  return {lo, hi, false, hi_open};
}

static std::string scalar_text(const Located& v) {
  return v.node.IsScalar() ? v.node.Scalar() : "";
}

static int64_t read_int(const Located& v, Range range) {
  const std::optional<int64_t> x = parse_int(scalar_text(v));
  if (!x || !range.contains(static_cast<double>(*x)))
    fail(v, fmt::format("expected {}, got {}", range.text(true), shown(v.node)));
  return *x;
}

static uint64_t read_uint(const Located& v) {
  const std::optional<uint64_t> x = parse_uint(scalar_text(v));
  if (!x) fail(v, fmt::format("expected an integer >= 0, got {}", shown(v.node)));
  return *x;
}

static double read_number(const Located& v, Range range) {
  const std::optional<double> x = parse_number(scalar_text(v));
  if (!x || !range.contains(*x))
    fail(v, fmt::format("expected {}, got {}", range.text(false), shown(v.node)));
  return *x;
}

static bool read_bool(const Located& v) {
  const std::optional<bool> x = parse_bool(scalar_text(v));
  if (!x) fail(v, fmt::format("expected true or false, got {}", shown(v.node)));
  return *x;
}

static std::string read_name(const Located& v) {
  std::string text = scalar_text(v);
  if (text.empty()) fail(v, fmt::format("expected a name, got {}", shown(v.node)));
  return text;
}

static std::string read_choice(const Located& v, const std::vector<std::string>& choices) {
  std::string text = scalar_text(v);
  if (std::find(choices.begin(), choices.end(), text) == choices.end())
    fail(v, fmt::format("expected one of {}, got {}", fmt::join(choices, ", "), shown(v.node)));
  return text;
}

// Shortest text that reads back as the same double, always marked as a float ("1.0", "0.0003").
static std::string number_text(double x) {
  std::string text = fmt::format("{}", x);
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
  return text;
}

static std::string option_text(const OptionValue& value) {
  if (auto d = std::get_if<double>(&value)) return number_text(*d);
  return to_string(value);
}

// A mixer option or task parameter, typed by its spec so that resolve_options can judge it (an
// unknown key stays text, for resolve_options to reject with the valid names).
static OptionValue option_value(const Located& v, const std::vector<OptionSpec>& spec,
                                const std::string& key) {
  if (!v.node.IsScalar()) fail(v, fmt::format("expected a single value, got {}", shown(v.node)));
  const std::string& text = v.node.Scalar();
  auto it =
      std::find_if(spec.begin(), spec.end(), [&](const OptionSpec& s) { return s.name == key; });
  return it == spec.end() ? OptionValue{text} : parse_option_value(it->type, text);
}

// An option or parameter newer than the recorded runs (OptionSpec::omit_when_default) is kept out
// of the resolved values, and so of the run ids, while it holds its default.
static void drop_omitted_defaults(const std::vector<OptionSpec>& specs,
                                  std::map<std::string, OptionValue>& values) {
  for (const auto& spec : specs)
    if (spec.omit_when_default && values.at(spec.name) == spec.default_value)
      values.erase(spec.name);
}

// ---- the run schema --------------------------------------------------------------------------

// One field of a spec struct: how it is read from YAML and written into the canonical YAML.
template <class S>
struct Field {
  std::string name;
  std::function<void(S&, const Located&)> read;
  std::function<std::string(const S&)> text;
  // Non-empty: the canonical YAML leaves the field out when its text is this (its default), so
  // that a field added after runs were recorded does not change their ids.
  std::string omitted_text = {};
};

// `field`, left out of the canonical YAML while it holds the text `default_text`.
template <class S>
static Field<S> omitted_at_default(Field<S> field, std::string default_text) {
  field.omitted_text = std::move(default_text);
  return field;
}

template <class S>
static Field<S> int_field(std::string name, int64_t S::*m, Range range) {
  return {std::move(name), [=](S& s, const Located& v) { s.*m = read_int(v, range); },
          [=](const S& s) { return std::to_string(s.*m); }};
}
template <class S>
static Field<S> uint_field(std::string name, uint64_t S::*m) {
  return {std::move(name), [=](S& s, const Located& v) { s.*m = read_uint(v); },
          [=](const S& s) { return std::to_string(s.*m); }};
}
template <class S>
static Field<S> number_field(std::string name, double S::*m, Range range) {
  return {std::move(name), [=](S& s, const Located& v) { s.*m = read_number(v, range); },
          [=](const S& s) { return number_text(s.*m); }};
}
template <class S>
static Field<S> bool_field(std::string name, bool S::*m) {
  return {std::move(name), [=](S& s, const Located& v) { s.*m = read_bool(v); },
          [=](const S& s) { return std::string(s.*m ? "true" : "false"); }};
}
template <class S>
static Field<S> choice_field(std::string name, std::string S::*m,
                             std::vector<std::string> choices) {
  return {std::move(name), [=](S& s, const Located& v) { s.*m = read_choice(v, choices); },
          [=](const S& s) { return s.*m; }};
}

static const std::vector<Field<TrainSpec>>& train_fields() {
  using T = TrainSpec;
  static const std::vector<Field<T>> fields = {
      int_field("steps", &T::steps, between(1, kMaxSteps)),
      int_field("batch_size", &T::batch_size, between(1, kMaxBatchSize)),
      number_field("lr", &T::lr, above(0)),
      number_field("min_lr_ratio", &T::min_lr_ratio, between(0, 1)),
      int_field("warmup_steps", &T::warmup_steps, between(0, kMaxSteps)),
      number_field("weight_decay", &T::weight_decay, at_least(0)),
      number_field("beta1", &T::beta1, between(0, 1, true)),
      number_field("beta2", &T::beta2, between(0, 1, true)),
      number_field("eps", &T::eps, above(0)),
      number_field("grad_clip", &T::grad_clip, at_least(0)),
      number_field("target_accuracy", &T::target_accuracy, above(0)),
      int_field("log_every", &T::log_every, between(1, kMaxSteps)),
      int_field("eval_every", &T::eval_every, between(1, kMaxSteps)),
      int_field("checkpoint_every", &T::checkpoint_every, between(1, kMaxSteps)),
      choice_field("device", &T::device, {"auto", "cpu", "cuda"}),
      choice_field("precision", &T::precision, {"fp32", "tf32", "bf16"}),
      // Added after runs were recorded: in the canonical YAML only when set.
      omitted_at_default(int_field("curriculum_steps", &T::curriculum_steps, at_least(0)), "0"),
      omitted_at_default(
          int_field("curriculum_start_length", &T::curriculum_start_length, at_least(0)), "0"),
      omitted_at_default(
          int_field("target_patience_steps", &T::target_patience_steps, between(0, kMaxSteps)),
          "0"),
  };
  return fields;
}

// name, params and eval_lengths are read by resolve_task itself.
static const std::vector<Field<TaskSpec>>& task_fields() {
  using T = TaskSpec;
  static const std::vector<Field<T>> fields = {
      int_field("train_min_length", &T::train_min_length, between(1, kMaxLength)),
      int_field("train_max_length", &T::train_max_length, between(1, kMaxLength)),
      int_field("eval_examples", &T::eval_examples, between(1, kMaxExamples)),
      uint_field("eval_seed", &T::eval_seed),
  };
  return fields;
}

// layers is read by resolve_model itself.
static const std::vector<Field<models::ModelConfig>>& model_fields() {
  using T = models::ModelConfig;
  static const std::vector<Field<T>> fields = {
      int_field("d_model", &T::d_model, between(1, kMaxWidth)),
      int_field("n_layers", &T::n_layers, between(1, kMaxLayers)),
      int_field("mlp_hidden", &T::mlp_hidden, between(0, kMaxMlpHidden)),
      bool_field("tie_embeddings", &T::tie_embeddings),
  };
  return fields;
}

template <class S>
static std::vector<std::string> field_names(const std::vector<Field<S>>& fields,
                                            std::vector<std::string> extra = {}) {
  std::vector<std::string> names = std::move(extra);
  for (const auto& f : fields) names.push_back(f.name);
  return names;
}

static std::vector<std::string> model_keys() { return field_names(model_fields(), {"layers"}); }
static std::vector<std::string> task_keys() {
  auto keys = field_names(task_fields(), {"name", "params"});
  keys.push_back("eval_lengths");
  return keys;
}

enum class KeyKind { leaf, group, unknown };

static bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// What `path` is in the run schema. A group's keys are listed by group_keys.
static KeyKind key_kind(const std::string& path) {
  if (path == "task" || path == "train" || path == "task.params") return KeyKind::group;
  if (path == "model" || path == "seed") return KeyKind::leaf;
  auto under = [&](const std::string& prefix) {
    return path.rfind(prefix, 0) == 0 ? path.substr(prefix.size()) : std::string("\n");
  };
  if (contains(model_keys(), under("model."))) return KeyKind::leaf;
  if (contains(task_keys(), under("task."))) return KeyKind::leaf;
  if (contains(field_names(train_fields()), under("train."))) return KeyKind::leaf;
  std::string param = under("task.params.");
  if (param != "\n" && !param.empty() && param.find('.') == std::string::npos) return KeyKind::leaf;
  return KeyKind::unknown;
}

static std::string group_keys(const std::string& group) {
  if (group.empty()) return "model, seed, task, train";
  if (group == "model") return fmt::format("{}", fmt::join(model_keys(), ", "));
  if (group == "task") return fmt::format("{}", fmt::join(task_keys(), ", "));
  if (group == "train") return fmt::format("{}", fmt::join(field_names(train_fields()), ", "));
  return "";
}

// Fails at `key` for the first segment of `path` that the schema does not know.
[[noreturn]] static void fail_unknown(const std::string& path, const Located& key) {
  std::string known;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string prefix = path.substr(0, dot);
    KeyKind kind = key_kind(prefix);
    if (kind == KeyKind::unknown) {
      std::string name = prefix.substr(known.empty() ? 0 : known.size() + 1);
      std::string valid = group_keys(known);
      if (valid.empty()) fail(key.with_path(path), fmt::format("unknown key '{}'", excerpt(name)));
      fail(key.with_path(path), fmt::format("unknown key '{}' (valid{}: {})", excerpt(name),
                                            known.empty() ? "" : " in " + known, valid));
    }
    if (kind == KeyKind::leaf && dot != std::string::npos && prefix != "model")
      fail(key.with_path(path), fmt::format("{} takes a value, not keys", prefix));
    if (dot == std::string::npos) break;
    known = prefix;
    start = dot + 1;
  }
  fail(key.with_path(path), "unknown key");
}

void require_leaf(const std::string& path, const Located& key) {
  KeyKind kind = key_kind(path);
  if (kind == KeyKind::unknown) fail_unknown(path, key);
  if (kind == KeyKind::group)
    fail(key.with_path(path),
         fmt::format("is a group of keys; name one of them (valid: {})",
                     path == "task.params" ? "the task's parameters" : group_keys(path)));
}

void assign(const std::string& path, const Located& key, const Located& value, Assignments& out) {
  switch (key_kind(path)) {
    case KeyKind::unknown: fail_unknown(path, key);
    case KeyKind::leaf: out[path] = value.with_path(path); return;
    case KeyKind::group:
      for (const Entry& e :
           entries(value.with_path(path), fmt::format("a mapping of {} keys", path)))
        assign(e.key.path, e.key, e.value, out);
      return;
  }
}

// ---- resolution ------------------------------------------------------------------------------

static const Located* find(const Assignments& values, const std::string& path) {
  auto it = values.find(path);
  return it == values.end() ? nullptr : &it->second;
}

template <class S>
static void read_fields(S& spec, const std::vector<Field<S>>& fields,
                        const std::map<std::string, Located>& given) {
  for (const auto& f : fields)
    if (auto it = given.find(f.name); it != given.end()) f.read(spec, it->second);
}

// Where an OptionError points: the given value of its key, else `fallback`.
static const Located& option_node(const std::map<std::string, Located>& given,
                                  const std::string& key, const Located& fallback) {
  auto it = given.find(key);
  return it == given.end() ? fallback : it->second;
}

// Fills run.task; returns the task's vocabulary size.
static int64_t resolve_task(const Assignments& values, const Located& whole, TaskSpec& task) {
  std::vector<std::string> task_names;
  for (const auto& info : tasks::task_infos()) task_names.push_back(info.name);
  const Located* name = find(values, "task.name");
  if (!name)
    fail(whole.with_path("task.name"),
         fmt::format("missing: no task is named (valid: {})", fmt::join(task_names, ", ")));
  task.name = read_name(*name);
  const tasks::TaskInfo* info = nullptr;
  try {
    info = &tasks::find_task(task.name);
  } catch (const tasks::TaskError& e) {
    fail(*name, e.what());
  }

  std::map<std::string, Located> given_params;
  std::map<std::string, OptionValue> params;
  const std::string prefix = "task.params.";
  for (auto it = values.lower_bound(prefix); it != values.end() && it->first.rfind(prefix, 0) == 0;
       ++it) {
    std::string key = it->first.substr(prefix.size());
    given_params.emplace(key, it->second);
    params[key] = option_value(it->second, info->params, key);
  }
  const Located& params_fallback = given_params.empty() ? *name : given_params.begin()->second;
  int64_t vocab_size = 0;
  try {
    task.params = tasks::resolve_task_params(task.name, params).values();
    drop_omitted_defaults(info->params, task.params);
    vocab_size =
        static_cast<int64_t>(tasks::make_task(task.name, task.params)->vocabulary().size());
  } catch (const OptionError& e) {
    fail(option_node(given_params, e.key(), params_fallback), e.what());
  } catch (const tasks::TaskError& e) {
    fail(params_fallback, e.what());
  }

  std::map<std::string, Located> given;
  for (const auto& key : task_keys())
    if (const Located* v = find(values, "task." + key)) given.emplace(key, *v);
  read_fields(task, task_fields(), given);
  if (task.train_max_length < task.train_min_length)
    fail(given.count("train_max_length") ? given.at("train_max_length")
                                         : given.at("train_min_length"),
         fmt::format("expected train_max_length >= train_min_length, got [{}, {}]",
                     task.train_min_length, task.train_max_length));
  if (const Located* lengths = find(values, "task.eval_lengths")) {
    if (!lengths->node.IsSequence() || lengths->node.size() == 0)
      fail(*lengths,
           fmt::format("expected a non-empty list of lengths, got {}", shown(lengths->node)));
    task.eval_lengths.clear();
    for (size_t i = 0; i < lengths->node.size(); ++i) {
      const Located item{lengths->node[i], lengths->file, fmt::format("{}[{}]", lengths->path, i)};
      const int64_t length = read_int(item, between(1, kMaxLength));
      if (std::find(task.eval_lengths.begin(), task.eval_lengths.end(), length) !=
          task.eval_lengths.end())
        fail(item, fmt::format("expected distinct lengths, got {} twice", length));
      task.eval_lengths.push_back(length);
    }
  } else {
    const int64_t l = task.train_max_length;
    if (4 * l > kMaxLength)
      fail(given.at("train_max_length"),
           fmt::format("the default eval_lengths [{}, {}, {}] pass the largest length, {}: give "
                       "task.eval_lengths",
                       l, 2 * l, 4 * l, kMaxLength));
    task.eval_lengths = {l, 2 * l, 4 * l};
  }
  std::sort(task.eval_lengths.begin(), task.eval_lengths.end());  // distinct, as read above
  return vocab_size;
}

static void resolve_layers(const Located& layers, const std::map<std::string, Located>& model_nodes,
                           models::ModelConfig& model) {
  const auto& registry = models::MixerRegistry::instance();
  const std::string mixers = fmt::format("{}", fmt::join(registry.names(), ", "));
  if (!layers.node.IsSequence() || layers.node.size() == 0)
    fail(layers, fmt::format("expected a non-empty list of layers like {{mixer: NAME, ...options}} "
                             "(mixers: {}), got {}",
                             mixers, shown(layers.node)));
  model.layers.clear();
  for (size_t i = 0; i < layers.node.size(); ++i) {
    Located layer{layers.node[i], layers.file, fmt::format("{}[{}]", layers.path, i)};
    std::map<std::string, Located> given, keys;
    const Located* mixer_node = nullptr;
    for (const Entry& e : entries(layer, "a layer like {mixer: NAME, ...options}")) {
      std::string key = e.key.path.substr(layer.path.size() + 1);
      if (key == "mixer") mixer_node = &given.emplace(key, e.value).first->second;
      else given.emplace(key, e.value);
      keys.emplace(key, e.key);
    }
    if (!mixer_node) fail(layer, fmt::format("missing 'mixer' (valid: {})", mixers));
    models::LayerConfig config{read_name(*mixer_node), {}};
    const models::MixerInfo* info = nullptr;
    try {
      info = &registry.get(config.mixer);
    } catch (const OptionError& e) {
      fail(*mixer_node, e.what());
    }
    std::map<std::string, OptionValue> options;
    for (const auto& [key, node] : given)
      if (key != "mixer") options[key] = option_value(node, info->options, key);
    try {
      Options resolved = resolve_options("mixer " + config.mixer, info->options, options);
      if (info->check) info->check(model.d_model, resolved);
      config.options = resolved.values();
      drop_omitted_defaults(info->options, config.options);
    } catch (const OptionError& e) {
      // A width that the heads must divide may come from the model, not the layer.
      bool about_width = e.key() == "d_model" && model_nodes.count("d_model");
      bool known = std::any_of(info->options.begin(), info->options.end(),
                               [&](const OptionSpec& o) { return o.name == e.key(); });
      fail(about_width ? model_nodes.at("d_model")
                       : option_node(known ? given : keys, e.key(), layer),
           e.what());
    } catch (const std::invalid_argument& e) {  // a check that names no key
      fail(layer, e.what());
    }
    model.layers.push_back(std::move(config));
  }
}

static void read_model(const Located& base, bool inline_model, const Assignments& values,
                       int64_t vocab_size, RunConfig& run);

// Fills run.model and the chosen model's name.
static void resolve_model(const Assignments& values, const ModelLibrary& library,
                          const Located& whole, int64_t vocab_size, RunConfig& run) {
  std::vector<std::string> names;
  for (const auto& [name, node] : library) names.push_back(name);
  const std::string valid = names.empty()
                                ? "no models are defined; include experiments/models.yaml "
                                  "or add models:"
                                : fmt::format("valid: {}", fmt::join(names, ", "));
  const Located* chosen = find(values, "model");
  if (!chosen)
    fail(whole.with_path("model"), fmt::format("missing: no model is named ({})", valid));
  Located base = *chosen;
  bool inline_model = chosen->node.IsMap();
  if (!inline_model) {
    run.model_name = read_name(*chosen);
    auto it = library.find(run.model_name);
    if (it == library.end())
      fail(*chosen, fmt::format("unknown model '{}' ({})", excerpt(run.model_name), valid));
    base = it->second.with_path("model");
  }
  read_model(base, inline_model, values, vocab_size, run);
}

// Fills run.model from the model mapping `base` (a named model's definition or an inline one)
// with any model.<field> of `values` set around it.
static void read_model(const Located& base, bool inline_model, const Assignments& values,
                       int64_t vocab_size, RunConfig& run) {
  // The chosen model's own keys, then any model.<field> set around it.
  std::map<std::string, Located> given;
  std::vector<std::string> keys = model_keys();
  if (inline_model) keys.insert(keys.begin(), {"name", "vocab_size"});
  for (const Entry& e :
       entries(base, "a model: a mapping of " + fmt::format("{}", fmt::join(keys, ", ")))) {
    std::string key = e.key.path.substr(base.path.size() + 1);
    if (!contains(keys, key))
      fail(e.key, fmt::format("unknown key '{}' (valid: {})", excerpt(key), fmt::join(keys, ", ")));
    given.insert_or_assign(key, e.value);
  }
  for (const auto& key : model_keys())
    if (const Located* v = find(values, "model." + key)) given.insert_or_assign(key, *v);

  models::ModelConfig& model = run.model;
  model = models::ModelConfig{};
  model.vocab_size = vocab_size;
  if (auto it = given.find("name"); it != given.end()) run.model_name = read_name(it->second);
  if (auto it = given.find("vocab_size");
      it != given.end() && read_int(it->second, at_least(1)) != vocab_size)
    fail(it->second, fmt::format("the task {} has {} tokens, got {}", run.task.name, vocab_size,
                                 shown(it->second.node)));
  read_fields(model, model_fields(), given);
  auto layers = given.find("layers");
  if (layers == given.end())
    fail(base.with_path(base.path + ".layers"), "missing: a model needs layers");
  resolve_layers(layers->second, given, model);
  try {
    model.validate();
  } catch (const OptionError& e) {
    // validate names keys "model.<field>" and states them in its message.
    std::string key = e.key().rfind("model.", 0) == 0 ? e.key().substr(6) : e.key();
    const Located& at = option_node(given, key.substr(0, key.find_first_of(".[")), base);
    fail(at.with_path(""), e.what());
  }
}

void validate_model(const std::string& name, const ModelLibrary& library) {
  RunConfig run;
  run.model_name = name;
  // The vocabulary comes from a run's task; any size checks the model's own settings.
  read_model(library.at(name).with_path("models." + name), false, {}, 2, run);
}

RunConfig resolve_run(const Assignments& values, const ModelLibrary& models, const Located& whole) {
  RunConfig run;
  if (const Located* seed = find(values, "seed")) run.seed = read_uint(*seed);
  int64_t vocab_size = resolve_task(values, whole, run.task);
  resolve_model(values, models, whole, vocab_size, run);
  std::map<std::string, Located> given;
  for (const auto& f : train_fields())
    if (const Located* v = find(values, "train." + f.name)) given.emplace(f.name, *v);
  read_fields(run.train, train_fields(), given);
  if (run.train.curriculum_start_length > run.task.train_max_length)
    fail(given.at("curriculum_start_length"),
         fmt::format("expected at most task.train_max_length ({}), got {}",
                     run.task.train_max_length, run.train.curriculum_start_length));
  if (run.train.device == "cpu" && run.train.precision != "fp32")
    fail(given.at("precision"),
         fmt::format("expected fp32 on device cpu (tf32 and bf16 need cuda), got {}",
                     run.train.precision));
  // Where auto lands is the machine's to say, so only an explicit device is checked here; the
  // runner checks the device auto resolves to before the run starts.
  if (run.train.device != "auto")
    if (const auto conflict = run.model.device_conflict(run.train.device))
      fail(given.at("device"), fmt::format("got {}, but {}, or set train.device {}",
                                           run.train.device, conflict->layer, conflict->device));
  return run;
}

void finish(RunConfig& run) {
  run.canonical_yaml = canonical_yaml(run);
  run.id = run_id(run.canonical_yaml);
}

}  // namespace config

// ---- canonical form --------------------------------------------------------------------------

template <class S>
static void emit_fields(YAML::Emitter& out, const S& spec,
                        const std::vector<config::Field<S>>& fields) {
  for (const auto& f : fields) {
    const std::string text = f.text(spec);
    if (!f.omitted_text.empty() && text == f.omitted_text) continue;
    out << YAML::Key << f.name << YAML::Value << text;
  }
}

std::string canonical_yaml(const RunConfig& run) {
  using namespace YAML;
  Emitter out;
  out << BeginMap;
  out << Key << "suite" << Value << run.suite;
  out << Key << "model_name" << Value << run.model_name;
  out << Key << "seed" << Value << std::to_string(run.seed);

  out << Key << "model" << Value << BeginMap;
  out << Key << "vocab_size" << Value << std::to_string(run.model.vocab_size);
  emit_fields(out, run.model, config::model_fields());
  out << Key << "layers" << Value << BeginSeq;
  for (const auto& layer : run.model.layers) {
    out << BeginMap << Key << "mixer" << Value << layer.mixer;
    for (const auto& [key, value] : layer.options)
      out << Key << key << Value << config::option_text(value);
    out << EndMap;
  }
  out << EndSeq << EndMap;

  out << Key << "task" << Value << BeginMap;
  out << Key << "name" << Value << run.task.name;
  out << Key << "params" << Value;
  if (run.task.params.empty()) out << Flow;  // "params: {}" rather than "{}" on a line of its own
  out << BeginMap;
  for (const auto& [key, value] : run.task.params)
    out << Key << key << Value << config::option_text(value);
  out << EndMap;
  emit_fields(out, run.task, config::task_fields());
  out << Key << "eval_lengths" << Value << Flow << BeginSeq;
  for (int64_t length : run.task.eval_lengths) out << std::to_string(length);
  out << EndSeq << EndMap;

  out << Key << "train" << Value << BeginMap;
  emit_fields(out, run.train, config::train_fields());
  out << EndMap;
  out << EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string run_id(const std::string& canonical) {
  return fmt::format("{:016x}", fnv1a64(canonical)).substr(0, 12);
}

RunConfig run_config_from_yaml(const std::string& text, const std::string& source) {
  using namespace config;
  Located root = parse_yaml(text, source);
  Assignments values;
  std::string suite, model_name;
  for (const Entry& e : entries(root, "a run config (a mapping)")) {
    if (e.key.path == "suite") suite = read_name(e.value);
    else if (e.key.path == "model_name") model_name = read_name(e.value);
    else assign(e.key.path, e.key, e.value, values);
  }
  RunConfig run = resolve_run(values, {}, root);
  run.suite = suite;
  if (!model_name.empty()) run.model_name = model_name;
  finish(run);
  return run;
}

}  // namespace m2b
