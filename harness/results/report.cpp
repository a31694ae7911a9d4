#include "harness/results/report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/typed_text.h"
#include "harness/config/run_schema_internals.h"

namespace m2b {

namespace fs = std::filesystem;

std::string metric_label(const Table& t) {
  const MetricInfo& metric = metric_info(t.metric);
  return metric.at_prefix_t ? fmt::format("{}@{}", metric.name, t.prefix_t) : metric.name;
}

// ---- collecting runs -------------------------------------------------------------------------

static void add_stored(TableRun& run, const fs::path& dir) {
  StoredRun stored = read_stored_run(dir);
  run.state = stored.state;
  run.summary = std::move(stored.summary);
  run.problem = std::move(stored.problem);
}

std::vector<TableRun> collect_runs(const Suite& suite, const fs::path& results_root) {
  std::vector<TableRun> out;
  for (const RunConfig& config : suite.runs) {
    TableRun run{config.id,
                 config.model_name,
                 config.task.name,
                 config.seed,
                 config.task.train_min_length,
                 config.task.train_max_length,
                 config.task.eval_lengths,
                 RunState::missing,
                 std::nullopt,
                 config.canonical_yaml,
                 ""};
    add_stored(run, run_dir(results_root, config));
    out.push_back(std::move(run));
  }
  split_rows_by_config(out);
  return out;
}

static std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A run from its config.yaml, which holds what was planned (a diverged run's summary has no
// evaluation lengths). Read plainly rather than validated: results written by an older build
// must still be listed even if an option was renamed since.
static TableRun run_from_config(const fs::path& dir) {
  const fs::path path = dir / run_files::kConfig;
  TableRun run;
  run.config = read_text(path);
  config::Located root = config::parse_yaml(run.config, path.string());
  run.id = dir.filename().string();
  try {
    const YAML::Node& node = root.node;
    run.model = node["model_name"].as<std::string>();
    run.task = node["task"]["name"].as<std::string>();
    run.seed = node["seed"].as<uint64_t>();
    run.train_min_length = node["task"]["train_min_length"].as<int64_t>();
    run.train_max_length = node["task"]["train_max_length"].as<int64_t>();
    run.eval_lengths = node["task"]["eval_lengths"].as<std::vector<int64_t>>();
  } catch (const YAML::Exception& e) {
    config::fail(root, fmt::format("not a run config: {}", e.what()));
  }
  return run;
}

bool may_hold_run(const fs::directory_entry& entry) {
  return entry.is_directory() && entry.path().filename().string().rfind('.', 0) != 0 &&
         (fs::exists(entry.path() / run_files::kSummary) ||
          fs::exists(entry.path() / run_files::kConfig));
}

std::vector<TableRun> collect_runs(const fs::path& suite_results_dir,
                                   std::vector<std::string>* unreadable) {
  std::vector<fs::path> dirs;
  if (fs::is_directory(suite_results_dir))
    for (const auto& entry : fs::directory_iterator(suite_results_dir))
      if (may_hold_run(entry)) dirs.push_back(entry.path());
  std::sort(dirs.begin(), dirs.end());
  std::vector<TableRun> out;
  const auto leave_out = [&](const std::string& problem) {
    if (unreadable && !problem.empty()) unreadable->push_back(problem);
  };
  for (const fs::path& dir : dirs) {
    if (!fs::exists(dir / run_files::kConfig)) {  // a summary alone: read_stored_run says why not
      leave_out(read_stored_run(dir).problem);
      continue;
    }
    TableRun run;
    try {
      run = run_from_config(dir);
    } catch (const ConfigError& e) {
      leave_out(fmt::format("{}; the tables leave this folder out", e.what()));
      continue;
    }
    add_stored(run, dir);
    out.push_back(std::move(run));
  }
  // A folder has no plan order: rows by model name, then seed.
  std::stable_sort(out.begin(), out.end(), [](const TableRun& a, const TableRun& b) {
    return std::tie(a.model, a.seed) < std::tie(b.model, b.seed);
  });
  split_rows_by_config(out);
  return out;
}

// The settings of a canonical config by key path ("train.lr", "model.layers[0].mixer"), a list
// of scalars as one value; without what may differ within a row (seed) or never does.
static std::map<std::string, std::string> config_settings(const std::string& yaml) {
  std::map<std::string, std::string> out;
  std::function<void(const YAML::Node&, const std::string&)> walk = [&](const YAML::Node& node,
                                                                        const std::string& path) {
    if (node.IsMap()) {
      for (const auto& entry : node)
        walk(entry.second, path.empty() ? entry.first.Scalar() : path + "." + entry.first.Scalar());
    } else if (node.IsSequence() && node.size() > 0 && !node[0].IsScalar()) {
      for (size_t i = 0; i < node.size(); ++i) walk(node[i], fmt::format("{}[{}]", path, i));
    } else if (node.IsSequence()) {
      std::vector<std::string> items;
      for (const auto& item : node) items.push_back(item.Scalar());
      out[path] = fmt::format("[{}]", fmt::join(items, ","));
    } else {
      out[path] = node.IsScalar() ? node.Scalar() : "";
    }
  };
  walk(YAML::Load(yaml), "");
  for (const char* same_row : {"suite", "model_name", "seed"}) out.erase(same_row);
  return out;
}

void split_rows_by_config(std::vector<TableRun>& runs) {
  using Row = std::tuple<std::string, int64_t, int64_t, std::string>;
  std::map<Row, std::vector<TableRun*>> rows;
  for (TableRun& run : runs)
    if (!run.config.empty())
      rows[{run.task, run.train_min_length, run.train_max_length, run.model}].push_back(&run);
  for (const auto& [row, members] : rows) {
    std::vector<std::map<std::string, std::string>> settings;
    for (const TableRun* run : members) settings.push_back(config_settings(run->config));
    std::set<std::string> differing;
    for (const auto& a : settings)
      for (const auto& [key, value] : a)
        for (const auto& b : settings)
          if (!b.count(key) || b.at(key) != value) differing.insert(key);
    for (size_t i = 0; i < members.size(); ++i)
      for (const std::string& key : differing)
        members[i]->model +=
            fmt::format(" {}={}", key, settings[i].count(key) ? settings[i].at(key) : "(unset)");
  }
}

std::vector<std::string> problems(const std::vector<TableRun>& runs) {
  std::vector<std::string> out;
  for (const TableRun& run : runs)
    if (run.state == RunState::invalid) out.push_back(run.problem);
  return out;
}

// ---- reference numbers -----------------------------------------------------------------------

std::vector<ReferenceNumber> load_reference_numbers(const fs::path& path) {
  using namespace config;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(fmt::format("{}: cannot read the reference numbers", path.string()));
  Located root = parse_yaml(read_text(path), path.string());
  std::vector<ReferenceNumber> out;
  for (const Entry& top : entries(root, "a mapping with references:")) {
    if (top.key.node.Scalar() != "references")
      fail(top.key, fmt::format("unknown key '{}' (valid: references)", top.key.node.Scalar()));
    if (!top.value.node.IsSequence())
      fail(top.value, fmt::format("expected a list, got {}", shown(top.value.node)));
    for (size_t i = 0; i < top.value.node.size(); ++i) {
      Located item{top.value.node[i], root.file, fmt::format("references[{}]", i)};
      ReferenceNumber ref;
      std::set<std::string> seen;
      for (const Entry& e : entries(item, "a mapping")) {
        const std::string key = e.key.node.Scalar();
        seen.insert(key);
        const YAML::Node& v = e.value.node;
        auto text = [&] {
          if (!v.IsScalar()) fail(e.value, fmt::format("expected text, got {}", shown(v)));
          return v.Scalar();
        };
        if (key == "task") ref.task = text();
        else if (key == "model") ref.model = text();
        else if (key == "claim") ref.claim = text();
        else if (key == "source") ref.source = text();
        else if (key == "length_ratio") {
          const std::optional<double> x = parse_number(v.IsScalar() ? v.Scalar() : "");
          if (!x || !(*x > 0))
            fail(e.value, fmt::format("expected a number > 0, got {}", shown(v)));
          ref.length_ratio = *x;
        } else if (key == "value") {
          const std::optional<double> x = parse_number(v.IsScalar() ? v.Scalar() : "");
          if (v.IsScalar() && v.Scalar() == "unknown") ref.value.reset();
          else if (x && *x >= 0 && *x <= 1) ref.value = x;
          else
            fail(e.value, fmt::format("expected a number in [0, 1] or unknown, got {}", shown(v)));
        } else if (key == "metrics") {
          if (!v.IsSequence() || v.size() == 0)
            fail(e.value, fmt::format("expected a list of metrics, got {}", shown(v)));
          for (size_t m = 0; m < v.size(); ++m) {
            try {
              ref.metrics.push_back(parse_metric(v[m].IsScalar() ? v[m].Scalar() : "",
                                                 /*with_prefix_t_metrics=*/false));
            } catch (const std::invalid_argument& err) {
              fail({v[m], root.file, fmt::format("{}.metrics[{}]", item.path, m)}, err.what());
            }
          }
        } else {
          fail(e.key, fmt::format("unknown key '{}' (valid: task, model, metrics, length_ratio, "
                                  "value, claim, source)",
                                  key));
        }
      }
      for (const char* required : {"task", "model", "metrics", "length_ratio", "value", "claim"})
        if (!seen.count(required)) fail(item, fmt::format("missing '{}'", required));
      out.push_back(std::move(ref));
    }
  }
  return out;
}

// ---- building ---------------------------------------------------------------------------------

double Cell::mean() const {
  double sum = 0;
  for (double v : values) sum += v;
  return values.empty() ? std::nan("") : sum / values.size();
}

double Cell::std() const {
  if (values.size() < 2) return 0;
  double m = mean(), ss = 0;
  for (double v : values) ss += (v - m) * (v - m);
  return std::sqrt(ss / (values.size() - 1));
}

// A row label names a reference's model when it is that model, maybe with grid settings after it.
static bool names_model(const std::string& row, const std::string& model) {
  return row == model || row.rfind(model + " ", 0) == 0;
}

std::vector<Table> build_tables(const std::vector<TableRun>& runs,
                                const std::vector<Metric>& metrics,
                                const std::vector<ReferenceNumber>& references, int64_t prefix_t) {
  for (Metric metric : metrics)
    if (metric_info(metric).at_prefix_t && prefix_t < 1)
      throw std::invalid_argument(fmt::format("a {} table needs a prefix length t >= 1, got {}",
                                              metric_info(metric).title, prefix_t));
  // Groups (task, training range) and their rows, in order of first appearance.
  struct Group {
    std::string task;
    int64_t min, max;
    std::vector<std::string> models;
    std::set<int64_t> lengths;
    std::vector<const TableRun*> runs;
  };
  std::vector<Group> groups;
  for (const TableRun& run : runs) {
    auto g = std::find_if(groups.begin(), groups.end(), [&](const Group& x) {
      return x.task == run.task && x.min == run.train_min_length && x.max == run.train_max_length;
    });
    if (g == groups.end())
      g = groups.insert(groups.end(),
                        Group{run.task, run.train_min_length, run.train_max_length, {}, {}, {}});
    if (std::find(g->models.begin(), g->models.end(), run.model) == g->models.end())
      g->models.push_back(run.model);
    g->lengths.insert(run.eval_lengths.begin(), run.eval_lengths.end());
    if (run.summary)
      for (const EvalResult& e : run.summary->eval) g->lengths.insert(e.length);
    g->runs.push_back(&run);
  }

  std::vector<Table> tables;
  for (const Group& g : groups) {
    for (Metric metric : metrics) {
      Table t;
      t.task = g.task;
      t.train_min_length = g.min;
      t.train_max_length = g.max;
      t.metric = metric;
      if (metric_info(metric).at_prefix_t) t.prefix_t = prefix_t;
      t.lengths.assign(g.lengths.begin(), g.lengths.end());
      t.models = g.models;
      t.cells.assign(t.models.size(), std::vector<Cell>(t.lengths.size()));
      for (const TableRun* run : g.runs) {
        size_t row = std::find(t.models.begin(), t.models.end(), run->model) - t.models.begin();
        for (size_t col = 0; col < t.lengths.size(); ++col) {
          const int64_t length = t.lengths[col];
          bool planned = std::find(run->eval_lengths.begin(), run->eval_lengths.end(), length) !=
                         run->eval_lengths.end();
          const EvalResult* result = nullptr;
          if (run->summary)
            for (const EvalResult& e : run->summary->eval)
              if (e.length == length) result = &e;
          Cell& cell = t.cells[row][col];
          const std::optional<double> value =
              result ? metric_info(metric).value(*result, prefix_t) : std::nullopt;
          if (run->state == RunState::diverged && (planned || result)) ++cell.diverged;
          else if (value) cell.values.push_back(*value);
          else if (planned || result) ++cell.missing;
        }
      }
      for (const ReferenceNumber& ref : references) {
        bool for_metric =
            std::find(ref.metrics.begin(), ref.metrics.end(), metric) != ref.metrics.end();
        bool for_row = std::any_of(t.models.begin(), t.models.end(),
                                   [&](const std::string& m) { return names_model(m, ref.model); });
        if (ref.task == t.task && for_metric && for_row) t.references.push_back(ref);
      }
      tables.push_back(std::move(t));
    }
  }
  return tables;
}

// ---- rendering --------------------------------------------------------------------------------

enum class Format { markdown, latex };

static std::string cell_text(const Cell& cell, Format format) {
  const char* pm = format == Format::latex ? "$\\pm$" : "±";
  std::vector<std::string> parts;
  const size_t n = cell.values.size();
  if (n > 1)
    parts.push_back(fmt::format("{:.3f} {} {:.3f} (n={})", cell.mean(), pm, cell.std(), n));
  if (n == 1) parts.push_back(fmt::format("{:.3f} (n=1)", cell.mean()));
  if (cell.diverged) parts.push_back(fmt::format("diverged {}/{}", cell.diverged, cell.runs()));
  if (cell.missing) {
    if (n == 0 && cell.diverged == 0) parts.push_back("missing");
    else parts.push_back(fmt::format("missing {}/{}", cell.missing, cell.runs()));
  }
  if (parts.empty()) return "-";  // this model was never to be evaluated at this length
  return fmt::format("{}", fmt::join(parts, "; "));
}

// The paper's statement at a length: its number or its words, "unknown" elsewhere.
static std::string reference_text(const Table& t, const ReferenceNumber& ref, int64_t length) {
  if (static_cast<double>(length) != ref.length_ratio * t.train_max_length) return "unknown";
  return ref.value ? fmt::format("{:.3f} ({})", *ref.value, ref.claim)
                   : fmt::format("{} (no number)", ref.claim);
}

static std::string title(const Table& t) {
  const MetricInfo& metric = metric_info(t.metric);
  return fmt::format("{}: {}{} (training lengths {}-{})", t.task, metric.title,
                     metric.at_prefix_t ? fmt::format(" at t = {}", t.prefix_t) : "",
                     t.train_min_length, t.train_max_length);
}

// The paper rows that follow row `row`: the references to its model, once per table, after the
// first row that names the model (a grid gives one model many rows; one paper row says it all).
static std::vector<const ReferenceNumber*> references_after(const Table& t, size_t row) {
  std::vector<const ReferenceNumber*> out;
  for (const ReferenceNumber& ref : t.references) {
    if (!names_model(t.models[row], ref.model)) continue;
    bool named_before =
        std::any_of(t.models.begin(), t.models.begin() + row,
                    [&](const std::string& m) { return names_model(m, ref.model); });
    if (!named_before) out.push_back(&ref);
  }
  return out;
}

// References whose length is not a column of the table, so that they are not lost either.
static std::vector<std::string> unplaced_references(const Table& t) {
  std::vector<std::string> out;
  for (const ReferenceNumber& ref : t.references) {
    double length = ref.length_ratio * t.train_max_length;
    if (std::find(t.lengths.begin(), t.lengths.end(), static_cast<int64_t>(length)) ==
            t.lengths.end() ||
        length != std::floor(length))
      out.push_back(fmt::format("{} at {}x the training length ({}): {}", ref.model,
                                ref.length_ratio, length,
                                reference_text(t, ref, static_cast<int64_t>(length))));
  }
  return out;
}

static const char* kLegend =
    "mean ± sample std over seeds (n finished runs); `(train)`: inside the training range; "
    "`diverged k/n`, `missing k/n`: runs that diverged or have no result; `(paper)` rows: "
    "experiments/paper/reference_numbers.yaml, `unknown` where the paper states no number.";

std::string to_markdown(const std::vector<Table>& tables) {
  std::string out;
  for (const Table& t : tables) {
    out += fmt::format("### {}\n\n| model |", title(t));
    for (int64_t length : t.lengths)
      out += t.in_training_range(length) ? fmt::format(" {} (train) |", length)
                                         : fmt::format(" {} |", length);
    out += "\n|---|";
    for (size_t i = 0; i < t.lengths.size(); ++i) out += "---|";
    out += "\n";
    for (size_t row = 0; row < t.models.size(); ++row) {
      out += fmt::format("| {} |", t.models[row]);
      for (const Cell& cell : t.cells[row])
        out += fmt::format(" {} |", cell_text(cell, Format::markdown));
      out += "\n";
      for (const ReferenceNumber* ref : references_after(t, row)) {
        out += fmt::format("| {} (paper) |", ref->model);
        for (int64_t length : t.lengths)
          out += fmt::format(" {} |", reference_text(t, *ref, length));
        out += "\n";
      }
    }
    for (const std::string& note : unplaced_references(t))
      out += fmt::format("\npaper: {}\n", note);
    out += "\n";
  }
  return out + kLegend + "\n";
}

static std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string to_csv(const std::vector<Table>& tables) {
  std::string out =
      "task,train_min_length,train_max_length,metric,model,length,in_training_range,mean,std,n,"
      "diverged,missing,runs,paper_value,paper_claim\n";
  for (const Table& t : tables) {
    for (size_t row = 0; row < t.models.size(); ++row) {
      for (size_t col = 0; col < t.lengths.size(); ++col) {
        const Cell& cell = t.cells[row][col];
        const int64_t length = t.lengths[col];
        std::string paper_value, paper_claim;
        for (const ReferenceNumber& ref : t.references)
          if (names_model(t.models[row], ref.model) &&
              static_cast<double>(length) == ref.length_ratio * t.train_max_length) {
            paper_value = ref.value ? fmt::format("{}", *ref.value) : "";
            paper_claim = ref.claim;
          }
        bool measured = !cell.values.empty();
        out += fmt::format(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_field(t.task), t.train_min_length,
            t.train_max_length, metric_label(t), csv_field(t.models[row]), length,
            t.in_training_range(length) ? 1 : 0, measured ? fmt::format("{:.6f}", cell.mean()) : "",
            measured ? fmt::format("{:.6f}", cell.std()) : "", cell.values.size(), cell.diverged,
            cell.missing, cell.runs(), paper_value, csv_field(paper_claim));
      }
    }
  }
  return out;
}

static std::string latex_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '_' || c == '%' || c == '&' || c == '#' || c == '$' || c == '{' || c == '}')
      out += '\\';
    out += c;
  }
  return out;
}

std::string to_latex(const std::vector<Table>& tables) {
  std::string out =
      "% Generated by m2bench table. Needs \\usepackage{booktabs}. Mean $\\pm$ sample std over "
      "seeds;\n% $^\\dagger$: inside the training range; (paper): reference numbers, unknown where "
      "the paper states none.\n";
  for (const Table& t : tables) {
    out += fmt::format("% {}\n\\begin{{tabular}}{{l{}}}\n\\toprule\nModel", latex_escape(title(t)),
                       std::string(t.lengths.size(), 'c'));
    for (int64_t length : t.lengths)
      out += t.in_training_range(length) ? fmt::format(" & {}$^\\dagger$", length)
                                         : fmt::format(" & {}", length);
    out += " \\\\\n\\midrule\n";
    for (size_t row = 0; row < t.models.size(); ++row) {
      out += latex_escape(t.models[row]);
      for (const Cell& cell : t.cells[row]) out += " & " + cell_text(cell, Format::latex);
      out += " \\\\\n";
      for (const ReferenceNumber* ref : references_after(t, row)) {
        out += latex_escape(ref->model) + " (paper)";
        for (int64_t length : t.lengths)
          out += " & " + latex_escape(reference_text(t, *ref, length));
        out += " \\\\\n";
      }
    }
    out += "\\bottomrule\n\\end{tabular}\n\n";
  }
  return out;
}

// A provenance field of a run's summary as text; empty where the run has none.
static std::string provenance_field(const TableRun& run, const char* key) {
  if (!run.summary) return "";
  const nlohmann::json& p = run.summary->provenance;
  if (!p.contains(key) || p.at(key).is_null()) return "";
  return p.at(key).is_string() ? p.at(key).get<std::string>() : p.at(key).dump();
}

std::string runs_csv(const std::vector<TableRun>& runs) {
  std::string out =
      "id,model,task,seed,train_min_length,train_max_length,state,git_sha,git_dirty,device,"
      "libtorch,cuda,wall_s,finished_at\n";
  for (const TableRun& run : runs) {
    const auto field = [&](const char* key) { return csv_field(provenance_field(run, key)); };
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", run.id, csv_field(run.model),
                       csv_field(run.task), run.seed, run.train_min_length, run.train_max_length,
                       to_string(run.state), field("git_sha"), field("git_dirty"), field("device"),
                       field("libtorch"), field("cuda"),
                       run.summary ? fmt::format("{:.1f}", run.summary->wall_s) : "",
                       field("finished_at"));
  }
  return out;
}

std::vector<std::string> provenance_lines(const std::vector<TableRun>& runs) {
  // Each distinct value with the number of runs that have it, so a table mixing code versions
  // or devices says so.
  const auto tally = [&](const std::function<std::string(const TableRun&)>& value) {
    std::map<std::string, int> counts;
    for (const TableRun& run : runs)
      if (run.summary) ++counts[value(run)];
    std::vector<std::string> parts;
    for (const auto& [text, n] : counts)
      parts.push_back(fmt::format("{} ({} run{})", text, n, n == 1 ? "" : "s"));
    return fmt::format("{}", fmt::join(parts, "; "));
  };
  size_t with_results = 0;
  double wall_s = 0;
  std::string first_start, last_finish;
  for (const TableRun& run : runs) {
    if (!run.summary) continue;
    ++with_results;
    wall_s += run.summary->wall_s;
    const std::string start = provenance_field(run, "started_at");
    const std::string finish = provenance_field(run, "finished_at");
    if (!start.empty() && (first_start.empty() || start < first_start)) first_start = start;
    if (finish > last_finish) last_finish = finish;
  }
  if (with_results == 0) return {"no run has results yet"};
  return {fmt::format("code: {}", tally([](const TableRun& r) {
                        const std::string sha = provenance_field(r, "git_sha");
                        return fmt::format(
                            "git {}{}", sha.substr(0, 12),
                            provenance_field(r, "git_dirty") == "true" ? " (dirty)" : "");
                      })),
          fmt::format("device: {}",
                      tally([](const TableRun& r) { return provenance_field(r, "device"); })),
          fmt::format("libtorch {}", tally([](const TableRun& r) {
                        const std::string cuda = provenance_field(r, "cuda");
                        return provenance_field(r, "libtorch") +
                               (cuda.empty() ? ", no CUDA" : ", CUDA " + cuda);
                      })),
          fmt::format("seeds: {}",
                      tally([](const TableRun& r) { return provenance_field(r, "seed"); })),
          fmt::format("wall time: {:.1f} min summed over {} runs, from {} to {}", wall_s / 60,
                      with_results, first_start, last_finish)};
}

void write_tables(const fs::path& dir, const std::vector<Table>& tables,
                  const std::vector<TableRun>& runs, const std::vector<std::string>& problems) {
  const std::vector<std::string> provenance = provenance_lines(runs);
  std::string md =
      to_markdown(tables) + "\nProvenance (from the runs' summary.json; per run in runs.csv):\n\n";
  for (const std::string& line : provenance) md += "- " + line + "\n";
  std::string tex = to_latex(tables) + "% Provenance (per run in runs.csv):\n";
  for (const std::string& line : provenance) tex += "% " + line + "\n";
  if (!problems.empty()) {
    md += "\nLeft out (counted as missing where the plan has the run):\n\n";
    tex += "% Left out (counted as missing where the plan has the run):\n";
  }
  for (const std::string& line : problems) {
    md += "- " + line + "\n";
    tex += "% " + line + "\n";
  }
  write_atomic(dir / "table.md", md);
  write_atomic(dir / "table.csv", to_csv(tables));
  write_atomic(dir / "table.tex", tex);
  write_atomic(dir / "runs.csv", runs_csv(runs));
}

ReportSource open_report_source(const fs::path& target, const fs::path& results_root) {
  ReportSource source;
  if (fs::is_directory(target)) {
    source.results_dir = target;
    source.suite = fs::absolute(target).lexically_normal().filename().string();
    if (source.suite.empty()) source.suite = fs::absolute(target).parent_path().filename().string();
    source.runs = collect_runs(target, &source.problems);
    if (source.runs.empty())
      throw std::invalid_argument(fmt::format(
          "{}: no run folders in it (<run-id>/config.yaml, as `m2bench run` writes them){}; give "
          "a suite file or a results/<suite> folder",
          target.string(), source.problems.empty() ? "" : ": " + source.problems.front()));
    for (std::string& problem : problems(source.runs))
      source.problems.push_back(std::move(problem));
    return source;
  }
  if (!fs::exists(target))
    throw std::invalid_argument(
        fmt::format("{}: no such suite file or results folder (give SUITE.yaml or results/<suite>)",
                    target.string()));
  Suite suite = load_suite(target);
  source.suite = suite.name;
  source.results_dir = suite_dir(results_root, suite.name);
  // A table of nothing but missing runs, written where none ran, is most likely a --results
  // forgotten; a suite that has begun to run keeps its missing runs as such.
  if (!fs::is_directory(source.results_dir))
    throw std::invalid_argument(fmt::format(
        "{}: no results of suite {} here: run it first (m2bench run), or give --results with "
        "the root it ran into",
        source.results_dir.string(), suite.name));
  source.runs = collect_runs(suite, results_root);
  source.problems = problems(source.runs);
  fs::path references = target.parent_path() / "reference_numbers.yaml";
  if (fs::exists(references)) source.reference_numbers = references;
  return source;
}

SuiteTables write_suite_tables(const fs::path& target, const fs::path& results_root,
                               const std::optional<fs::path>& reference_numbers, int64_t prefix_t) {
  SuiteTables out{open_report_source(target, results_root), {}};
  std::optional<fs::path> references =
      reference_numbers ? reference_numbers : out.source.reference_numbers;
  std::vector<Metric> metrics;
  for (const MetricInfo& metric : metric_table())
    if (!metric.at_prefix_t || prefix_t >= 1) metrics.push_back(metric.metric);
  out.tables = build_tables(
      out.source.runs, metrics,
      references ? load_reference_numbers(*references) : std::vector<ReferenceNumber>{}, prefix_t);
  write_tables(out.source.results_dir, out.tables, out.source.runs, out.source.problems);
  return out;
}

}  // namespace m2b
