// Tables from hand-made results: mean ± std over seeds, diverged and missing runs shown as such,
// the training range marked, the paper's statements beside the measurements; md, csv and tex.
#include <fmt/format.h>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness/config/run_schema.h"
#include "harness/config/suite.h"
#include "harness/results/report.h"
#include "tests/catch.h"
#include "tests/harness/suite_fixtures.h"
#include "tests/harness/test_child.h"
#include "tests/read_text.h"

using m2b::test::m2bench_cli;
using m2b::test::TempDir;
namespace fs = std::filesystem;

namespace {

// accuracy and sequence accuracy at lengths 16 and 64
m2b::TableRun run(const std::string& model, uint64_t seed, m2b::RunState state,
                  std::vector<std::pair<double, double>> at16_at64 = {}) {
  m2b::TableRun r;
  r.id = model + std::to_string(seed);
  r.model = model;
  r.task = "s3";
  r.seed = seed;
  r.train_min_length = 1;
  r.train_max_length = 16;
  r.eval_lengths = {16, 64};
  r.state = state;
  if (state == m2b::RunState::finished || state == m2b::RunState::diverged) {
    m2b::RunSummary s;
    s.id = r.id;
    s.model = model;
    s.task = "s3";
    s.seed = seed;
    s.status = state == m2b::RunState::finished ? "finished" : "diverged";
    s.train_min_length = 1;
    s.train_max_length = 16;
    if (!at16_at64.empty())
      s.eval = {{16, at16_at64[0].first, at16_at64[0].second, 0.1},
                {64, at16_at64[1].first, at16_at64[1].second, 0.2}};
    r.summary = s;
  }
  return r;
}

std::vector<m2b::TableRun> sample_runs() {
  using m2b::RunState;
  return {run("m2rnn", 0, RunState::finished, {{1.0, 1.0}, {1.0, 0.5}}),
          run("m2rnn", 1, RunState::finished, {{1.0, 1.0}, {0.9, 0.4}}),
          run("m2rnn", 2, RunState::finished, {{1.0, 1.0}, {0.8, 0.3}}),
          run("mamba2", 0, RunState::finished, {{0.9, 0.6}, {0.3, 0.0}}),
          run("mamba2", 1, RunState::diverged),
          run("mamba2", 2, RunState::missing),
          run("lstm", 0, RunState::started)};
}

std::vector<m2b::ReferenceNumber> sample_references() {
  using m2b::Metric;
  return {{"s3", "m2rnn", {Metric::accuracy, Metric::sequence_accuracy}, 4, 1.0, "perfect", ""},
          {"s3", "mamba2", {Metric::accuracy}, 4, std::nullopt, "fails", ""},
          {"s5", "m2rnn", {Metric::accuracy}, 4, 1.0, "elsewhere", ""}};
}

}  // namespace

TEST_CASE("the markdown table shows mean ± std, diverged and missing runs and the paper",
          "[report]") {
  auto tables = m2b::build_tables(
      sample_runs(), {m2b::Metric::accuracy, m2b::Metric::sequence_accuracy}, sample_references());
  REQUIRE(tables.size() == 2);
  CHECK(tables[0].models == std::vector<std::string>{"m2rnn", "mamba2", "lstm"});
  CHECK(tables[0].references.size() == 2);  // s5's is for another task
  CHECK(tables[1].references.size() == 1);  // mamba2's speaks for accuracy only
  const std::string md = m2b::to_markdown({tables[0]});
  CHECK_THAT(md,
             Catch::Matchers::StartsWith(
                 "### s3: accuracy (training lengths 1-16)\n\n"
                 "| model | 16 (train) | 64 |\n"
                 "|---|---|---|\n"
                 "| m2rnn | 1.000 ± 0.000 (n=3) | 0.900 ± 0.100 (n=3) |\n"
                 "| m2rnn (paper) | unknown | 1.000 (perfect) |\n"
                 "| mamba2 | 0.900 (n=1); diverged 1/3; missing 1/3 | 0.300 (n=1); diverged 1/3; "
                 "missing 1/3 |\n"
                 "| mamba2 (paper) | unknown | fails (no number) |\n"
                 "| lstm | missing | missing |\n"));
  const std::string seq = m2b::to_markdown({tables[1]});
  CHECK_THAT(seq,
             Catch::Matchers::Contains("| m2rnn | 1.000 ± 0.000 (n=3) | 0.400 ± 0.100 (n=3) |\n"));
  CHECK_THAT(seq, Catch::Matchers::Contains("| mamba2 | 0.600 (n=1); diverged 1/3; missing 1/3 |"));
}

TEST_CASE("a model's paper row comes once, after its first grid row", "[report]") {
  auto runs = sample_runs();
  for (auto& r : runs)
    if (r.model == "m2rnn") r.model += r.seed == 0 ? " train.lr=0.01" : " train.lr=0.03";
  auto tables = m2b::build_tables(runs, {m2b::Metric::accuracy}, sample_references());
  const std::string md = m2b::to_markdown(tables);
  CHECK_THAT(md, Catch::Matchers::Contains("| m2rnn train.lr=0.01 | 1.000 (n=1) | 1.000 (n=1) |\n"
                                           "| m2rnn (paper) | unknown | 1.000 (perfect) |\n"
                                           "| m2rnn train.lr=0.03 |"));
  const std::string tex = m2b::to_latex(tables);
  for (const std::string& text : {md, tex}) {
    size_t paper_rows = 0;
    for (size_t at = text.find("m2rnn (paper)"); at != std::string::npos;
         at = text.find("m2rnn (paper)", at + 1))
      ++paper_rows;
    CHECK(paper_rows == 1);
  }
}

TEST_CASE("a run with every seed diverged says so, and lengths no run planned are marked",
          "[report]") {
  std::vector<m2b::TableRun> runs = {run("gru", 0, m2b::RunState::diverged),
                                     run("gru", 1, m2b::RunState::diverged)};
  runs.push_back(run("rnn", 0, m2b::RunState::missing));
  runs.back().eval_lengths = {16};
  auto tables = m2b::build_tables(runs, {m2b::Metric::accuracy}, {});
  CHECK_THAT(m2b::to_markdown(tables),
             Catch::Matchers::Contains("| gru | diverged 2/2 | diverged 2/2 |\n"
                                       "| rnn | missing | - |\n"));
}

TEST_CASE("the csv holds one line per cell with counts and the paper's value", "[report]") {
  auto tables = m2b::build_tables(sample_runs(), {m2b::Metric::accuracy}, sample_references());
  const std::string csv = m2b::to_csv(tables);
  CHECK_THAT(csv, Catch::Matchers::StartsWith(
                      "task,train_min_length,train_max_length,metric,model,length,"
                      "in_training_range,mean,std,n,diverged,missing,runs,paper_value,paper_claim\n"
                      "s3,1,16,accuracy,m2rnn,16,1,1.000000,0.000000,3,0,0,3,,\n"
                      "s3,1,16,accuracy,m2rnn,64,0,0.900000,0.100000,3,0,0,3,1,perfect\n"
                      "s3,1,16,accuracy,mamba2,16,1,0.900000,0.000000,1,1,1,3,,\n"
                      "s3,1,16,accuracy,mamba2,64,0,0.300000,0.000000,1,1,1,3,,fails\n"
                      "s3,1,16,accuracy,lstm,16,1,,,0,0,1,1,,\n"));
}

TEST_CASE("the latex table marks the training range and escapes names", "[report]") {
  auto runs = sample_runs();
  for (auto& r : runs) r.model += "_x";
  auto tables = m2b::build_tables(runs, {m2b::Metric::accuracy}, sample_references());
  const std::string tex = m2b::to_latex(tables);
  CHECK_THAT(tex, Catch::Matchers::Contains(
                      "\\begin{tabular}{lcc}\n\\toprule\nModel & 16$^\\dagger$ & 64 \\\\\n"));
  CHECK_THAT(tex, Catch::Matchers::Contains(
                      "m2rnn\\_x & 1.000 $\\pm$ 0.000 (n=3) & 0.900 $\\pm$ 0.100 (n=3) \\\\\n"));
  CHECK_THAT(tex, Catch::Matchers::Contains("lstm\\_x & missing & missing \\\\\n"));
  // "m2rnn_x" is not the model "m2rnn": no paper row for it.
  CHECK_THAT(tex, !Catch::Matchers::Contains("(paper) &"));
}

TEST_CASE("a paper number at a length the table lacks is listed under it", "[report]") {
  auto runs = sample_runs();
  for (auto& r : runs) r.train_max_length = 8;  // 4x is 32: not evaluated
  auto tables = m2b::build_tables(runs, {m2b::Metric::accuracy}, sample_references());
  CHECK_THAT(
      m2b::to_markdown(tables),
      Catch::Matchers::Contains("paper: m2rnn at 4x the training length (32): 1.000 (perfect)"));
}

TEST_CASE("tables are built from a results folder and written atomically", "[report]") {
  TempDir dir;
  const fs::path suite = dir.path() / "quick";
  auto finished = run("m2rnn", 0, m2b::RunState::finished, {{1.0, 1.0}, {0.5, 0.25}});
  const std::string config =
      "suite: quick\nmodel_name: m2rnn\nseed: 0\ntask:\n  name: s3\n"
      "  train_min_length: 1\n  train_max_length: 16\n  eval_lengths: [16, 64]\n";
  finished.summary->id = m2b::run_id(config);  // a run's folder is named by its config's hash
  m2b::write_atomic(suite / finished.summary->id / "config.yaml", config);
  m2b::write_summary(suite / finished.summary->id, *finished.summary);
  m2b::write_atomic(suite / "bbb" / "config.yaml",
                    "suite: quick\nmodel_name: gru\nseed: 3\ntask:\n  name: s3\n"
                    "  train_min_length: 1\n  train_max_length: 16\n  eval_lengths: [16, 64]\n");
  auto runs = m2b::collect_runs(suite);
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].model == "gru");
  CHECK(runs[0].state == m2b::RunState::started);
  CHECK(runs[1].state == m2b::RunState::finished);
  auto tables = m2b::build_tables(runs, {m2b::Metric::accuracy}, {});
  m2b::write_tables(suite, tables, runs);
  for (const char* name : {"table.md", "table.csv", "table.tex", "runs.csv"})
    CHECK(fs::exists(suite / name));
  std::ifstream in(suite / "runs.csv");
  std::string header, first;
  std::getline(in, header);
  std::getline(in, first);
  CHECK(header ==
        "id,model,task,seed,train_min_length,train_max_length,state,git_sha,git_dirty,device,"
        "libtorch,cuda,wall_s,finished_at");
  CHECK(first == "bbb,gru,s3,3,1,16,started,,,,,,,");  // no summary, no provenance
}

TEST_CASE("the provenance lines count each code version, device and seed among the runs",
          "[report]") {
  auto runs = sample_runs();
  using nlohmann::json;
  const auto stamp = [](m2b::TableRun& r, const char* sha, bool dirty, const char* device,
                        const char* start, const char* finish) {
    r.summary->provenance = {{"git_sha", sha},
                             {"git_dirty", dirty},
                             {"device", device},
                             {"libtorch", "2.11.0"},
                             {"cuda", device[0] == 'N' ? json("13.0") : json()},
                             {"seed", r.seed},
                             {"started_at", start},
                             {"finished_at", finish}};
    r.summary->wall_s = 90;
  };
  stamp(runs[0], "aaaaaaaaaaaaaaaa", false, "NVIDIA H100", "2026-01-01T00:00:00Z",
        "2026-01-01T00:01:30Z");
  stamp(runs[1], "aaaaaaaaaaaaaaaa", false, "NVIDIA H100", "2026-01-01T00:02:00Z",
        "2026-01-01T00:03:30Z");
  stamp(runs[2], "bbbbbbbbbbbbbbbb", true, "cpu", "2025-12-31T23:00:00Z", "2025-12-31T23:01:30Z");
  runs.resize(3);
  const auto lines = m2b::provenance_lines(runs);
  REQUIRE(lines.size() == 5);
  CHECK(lines[0] == "code: git aaaaaaaaaaaa (2 runs); git bbbbbbbbbbbb (dirty) (1 run)");
  CHECK(lines[1] == "device: NVIDIA H100 (2 runs); cpu (1 run)");
  CHECK(lines[2] == "libtorch 2.11.0, CUDA 13.0 (2 runs); 2.11.0, no CUDA (1 run)");
  CHECK(lines[3] == "seeds: 0 (1 run); 1 (1 run); 2 (1 run)");
  CHECK(lines[4] ==
        "wall time: 4.5 min summed over 3 runs, from 2025-12-31T23:00:00Z to 2026-01-01T00:03:30Z");
  CHECK(m2b::runs_csv(runs).find(",aaaaaaaaaaaaaaaa,false,NVIDIA H100,2.11.0,13.0,90.0,"
                                 "2026-01-01T00:01:30Z\n") != std::string::npos);
}

TEST_CASE("reference numbers are read with their positions checked", "[report]") {
  TempDir dir;
  auto good = dir.write("good.yaml", R"(references:
  - {task: s3, model: m2rnn, metrics: [accuracy], length_ratio: 4, value: 1.0, claim: perfect}
  - {task: s3, model: mamba2, metrics: [accuracy], length_ratio: 4, value: unknown, claim: fails}
)");
  auto refs = m2b::load_reference_numbers(good);
  REQUIRE(refs.size() == 2);
  CHECK(refs[0].value == 1.0);
  CHECK_FALSE(refs[1].value);
  auto bad = dir.write("bad.yaml", R"(references:
  - {task: s3, model: m2rnn, metrics: [acc], length_ratio: 4, value: 1.0, claim: perfect}
)");
  CHECK(m2b::test::config_error([&] { m2b::load_reference_numbers(bad); }) ==
        bad.string() +
            ":2:40: references[0].metrics[0]: unknown metric 'acc' (valid: accuracy, "
            "sequence_accuracy)");
  auto invented = dir.write("invented.yaml", R"(references:
  - {task: s3, model: m2rnn, metrics: [accuracy], length_ratio: 4, value: 1.2, claim: x}
)");
  CHECK_THAT(m2b::test::config_error([&] { m2b::load_reference_numbers(invented); }),
             Catch::Matchers::EndsWith("expected a number in [0, 1] or unknown, got 1.2"));
}

TEST_CASE(
    "the prefix accuracy table reads each run's curve at t, the curve's end past it, and "
    "counts runs without curves as missing",
    "[report][prefix_accuracy]") {
  auto runs = sample_runs();
  // m2rnn seeds 0 and 1 have curves of 16 and 64 points; seed 2 predates them.
  for (uint64_t seed : {0, 1}) {
    auto& eval = runs[seed].summary->eval;
    eval[0].prefix_accuracy.assign(16, 1.0);
    eval[1].prefix_accuracy.assign(64, 0.0);
    for (int t = 0; t < 32; ++t) eval[1].prefix_accuracy[t] = seed == 0 ? 0.8 : 0.6;
  }
  auto tables = m2b::build_tables(runs, {m2b::Metric::prefix_accuracy}, {}, 20);
  REQUIRE(tables.size() == 1);
  CHECK(tables[0].prefix_t == 20);
  CHECK(m2b::metric_label(tables[0]) == "prefix_accuracy@20");
  const std::string md = m2b::to_markdown(tables);
  CHECK_THAT(md, Catch::Matchers::StartsWith(
                     "### s3: prefix accuracy at t = 20 (training lengths 1-16)\n\n"
                     "| model | 16 (train) | 64 |\n"
                     "|---|---|---|\n"
                     "| m2rnn | 1.000 ± 0.000 (n=2); missing 1/3 | 0.700 ± 0.141 (n=2); "
                     "missing 1/3 |\n"));
  CHECK_THAT(m2b::to_csv(tables),
             Catch::Matchers::Contains("s3,1,16,prefix_accuracy@20,m2rnn,64,"));
  CHECK_THROWS_AS(m2b::build_tables(runs, {m2b::Metric::prefix_accuracy}, {}),
                  std::invalid_argument);
}

TEST_CASE("Every metric has one row of the metric table, found by its name", "[report][metrics]") {
  for (m2b::Metric metric :
       {m2b::Metric::accuracy, m2b::Metric::sequence_accuracy, m2b::Metric::prefix_accuracy}) {
    const m2b::MetricInfo& info = m2b::metric_info(metric);
    CHECK(info.metric == metric);
    CHECK(m2b::parse_metric(info.name) == metric);
  }
  CHECK(m2b::metric_names() == "accuracy, sequence_accuracy, prefix_accuracy");
  CHECK_THROWS_WITH(m2b::parse_metric("acc"),
                    "unknown metric 'acc' (valid: accuracy, sequence_accuracy, prefix_accuracy)");
  // The paper's reference numbers state no t, so they cannot name a metric read at one.
  CHECK_THROWS_WITH(m2b::parse_metric("prefix_accuracy", /*with_prefix_t_metrics=*/false),
                    "unknown metric 'prefix_accuracy' (valid: accuracy, sequence_accuracy)");
}

TEST_CASE("m2bench table refuses an unknown --metric and lists the valid ones",
          "[report][metrics][cli]") {
  const auto result = m2bench_cli({"table", "results/none", "--metric", "acc"});
  CHECK(result.status != 0);
  CHECK_THAT(result.err,
             Catch::Matchers::Contains("unknown metric 'acc' (valid: accuracy, sequence_accuracy, "
                                       "prefix_accuracy, both)"));
}

// ---- the store as `m2bench run` leaves it, and the two forms of `m2bench table` --------------

namespace {

// Two models x two seeds; nothing is trained: the tests write what runs would have.
const char* kStoreSuite = R"(suite: store
models:
  gru: {d_model: 16, n_layers: 1, layers: [{mixer: gru}]}
  att: {d_model: 16, n_layers: 1, layers: [{mixer: attention, num_heads: 2}]}
defaults:
  task: {name: parity, train_min_length: 2, train_max_length: 8, eval_lengths: [8, 16]}
  train: {device: cpu, lr: LR}
grid:
  model: [att, gru]
  seed: [0, 1]
)";

m2b::Suite store_suite(const TempDir& dir, const std::string& lr = "1.0e-3") {
  std::string text = kStoreSuite;
  text.replace(text.find("LR"), 2, lr);
  return m2b::load_suite(dir.write("store.yaml", text));
}

// What `m2bench run` leaves for `run`: config.yaml and a summary, the evaluations only where the
// run finished (a diverged run has none).
m2b::RunSummary stored_summary(const m2b::RunConfig& run, const std::string& status,
                               double accuracy) {
  m2b::RunSummary s;
  s.id = run.id;
  s.suite = run.suite;
  s.model = run.model_name;
  s.task = run.task.name;
  s.seed = run.seed;
  s.status = status;
  s.train_min_length = run.task.train_min_length;
  s.train_max_length = run.task.train_max_length;
  if (status == "diverged") s.diverged_at_step = 7;
  else
    for (int64_t length : run.task.eval_lengths)
      s.eval.push_back({length, accuracy, accuracy / 2, 0.1});
  return s;
}

fs::path store_run(const fs::path& root, const m2b::RunConfig& run, const std::string& status,
                   double accuracy) {
  const fs::path dir = m2b::run_dir(root, run);
  m2b::write_config(dir, run);
  m2b::write_summary(dir, stored_summary(run, status, accuracy));
  return dir;
}

// att seed 0 finished, att seed 1 diverged, gru's two seeds finished.
void store_runs(const m2b::Suite& suite, const fs::path& root) {
  store_run(root, suite.runs[0], "finished", 1.0);
  store_run(root, suite.runs[1], "diverged", 0);
  store_run(root, suite.runs[2], "finished", 0.5);
  store_run(root, suite.runs[3], "finished", 0.75);
}

std::vector<std::string> sorted_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  return lines;
}

std::vector<std::string> tree_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    names.push_back(fs::relative(e.path(), dir).string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("the folder form shows a diverged run as diverged at its planned lengths", "[report]") {
  TempDir dir;
  const m2b::Suite suite = store_suite(dir);
  store_runs(suite, dir.path() / "results");
  const auto runs = m2b::collect_runs(dir.path() / "results" / "store");
  REQUIRE(runs.size() == 4);
  const auto tables = m2b::build_tables(runs, {m2b::Metric::accuracy}, {});
  CHECK_THAT(
      m2b::to_markdown(tables),
      Catch::Matchers::Contains("| att | 1.000 (n=1); diverged 1/2 | 1.000 (n=1); diverged 1/2 |\n"
                                "| gru | 0.625 ± 0.177 (n=2) | 0.625 ± 0.177 (n=2) |\n"));
}

TEST_CASE("both forms of table give the same cells for the same store", "[report]") {
  TempDir dir;
  const m2b::Suite suite = store_suite(dir);
  const fs::path root = dir.path() / "results";
  store_runs(suite, root);
  const std::vector<m2b::Metric> both = {m2b::Metric::accuracy, m2b::Metric::sequence_accuracy};
  const auto csv = [&](const std::vector<m2b::TableRun>& runs) {
    return m2b::to_csv(m2b::build_tables(runs, both, {}));
  };
  const std::string by_suite = csv(m2b::collect_runs(suite, root));
  const std::string by_folder = csv(m2b::collect_runs(root / "store"));
  // Line by line: a folder has no plan order, so its rows are sorted by model name.
  CHECK(sorted_lines(by_suite) == sorted_lines(by_folder));
}

TEST_CASE("the folder form leaves out the store's own dot-folders", "[report]") {
  TempDir dir;
  const m2b::Suite suite = store_suite(dir);
  const fs::path root = dir.path() / "results";
  store_runs(suite, root);
  // What an interrupted --fresh leaves: a staging folder holding a run of its own.
  fs::copy(m2b::run_dir(root, suite.runs[2]), root / "store" / (".fresh-" + suite.runs[2].id),
           fs::copy_options::recursive);
  const auto runs = m2b::collect_runs(root / "store");
  CHECK(runs.size() == 4);
  for (const auto& run : runs) CHECK(run.id.rfind('.', 0) != 0);
}

TEST_CASE("runs of an edited suite get rows of their own, named by the settings that differ",
          "[report]") {
  TempDir dir;
  const fs::path root = dir.path() / "results";
  store_runs(store_suite(dir, "1.0e-3"), root);
  const m2b::Suite edited = store_suite(dir, "3.0e-3");
  store_runs(edited, root);
  const auto tables =
      m2b::build_tables(m2b::collect_runs(root / "store"), {m2b::Metric::accuracy}, {});
  REQUIRE(tables.size() == 1);
  CHECK(tables[0].models == std::vector<std::string>{"att train.lr=0.001", "att train.lr=0.003",
                                                     "gru train.lr=0.001", "gru train.lr=0.003"});
  for (const auto& row : tables[0].cells)
    for (const m2b::Cell& cell : row) CHECK(cell.runs() == 2);  // two seeds, never four
  // The suite form shows the edited suite's own runs, in rows named as usual.
  const auto current =
      m2b::build_tables(m2b::collect_runs(edited, root), {m2b::Metric::accuracy}, {});
  CHECK(current[0].models == std::vector<std::string>{"att", "gru"});
}

TEST_CASE(
    "a summary that is not its run's own, out of range or of an unknown status is named "
    "and the other runs still print",
    "[report]") {
  TempDir dir;
  const m2b::Suite suite = store_suite(dir);
  const fs::path root = dir.path() / "results";
  const fs::path good = store_run(root, suite.runs[0], "finished", 1.0);
  const fs::path copied = store_run(root, suite.runs[1], "finished", 1.0);
  fs::copy_file(good / "summary.json", copied / "summary.json",
                fs::copy_options::overwrite_existing);
  const fs::path too_high = store_run(root, suite.runs[2], "finished", 7.5);
  const fs::path running = store_run(root, suite.runs[3], "running", 0.5);
  for (const fs::path& target : {root / "store", dir.path() / "store.yaml"}) {
    INFO(target);
    const m2b::SuiteTables made = m2b::write_suite_tables(target, root, std::nullopt);
    REQUIRE(made.source.problems.size() == 3);
    const std::string problems =
        made.source.problems[0] + "\n" + made.source.problems[1] + "\n" + made.source.problems[2];
    for (const fs::path& bad : {copied, too_high, running})
      CHECK_THAT(problems, Catch::Matchers::Contains((bad / "summary.json").string() + ": "));
    CHECK_THAT(problems, Catch::Matchers::Contains("it is the summary of run " + suite.runs[0].id));
    CHECK_THAT(problems, Catch::Matchers::Contains("accuracy at length 8 is 7.5, outside [0, 1]"));
    CHECK_THAT(problems,
               Catch::Matchers::Contains("status \"running\" is not one of finished, diverged"));
    CHECK_THAT(made.source.problems[0], Catch::Matchers::EndsWith("delete it to retrain the run"));
    const std::string md = m2b::to_markdown(made.tables);
    CHECK_THAT(md, Catch::Matchers::Contains("| att | 1.000 (n=1); missing 1/2 |"));
    CHECK_THAT(md, Catch::Matchers::Contains("| gru | missing | missing |"));
    std::ifstream in(root / "store" / "table.md");
    std::stringstream written;
    written << in.rdbuf();
    CHECK_THAT(written.str(), Catch::Matchers::Contains("Left out") &&
                                  Catch::Matchers::Contains(too_high.string()));
  }
  CHECK(m2b::run_state(copied) == m2b::RunState::invalid);
}

TEST_CASE("table and plot refuse a folder with no run folders and write nothing", "[report]") {
  TempDir dir;
  const fs::path paper = dir.path() / "paper";
  dir.write("paper/reference_numbers.yaml", "references: []\n");
  dir.write("paper/notes/readme.txt", "not a run\n");
  const auto before = tree_in(paper);
  CHECK_THROWS_WITH(m2b::write_suite_tables(paper, dir.path() / "results", std::nullopt),
                    Catch::Matchers::Contains(paper.string() + ": no run folders in it"));
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"table", paper.string()},
        std::vector<std::string>{"plot", paper.string(), "--out",
                                 (dir.path() / "plots").string()}}) {
    const auto result = m2bench_cli(command);
    CHECK(result.status == m2b::cli::kExitError);
    CHECK_THAT(result.err, Catch::Matchers::StartsWith("m2bench: error: " + paper.string() +
                                                       ": no run folders in it"));
  }
  CHECK(tree_in(paper) == before);
  CHECK_FALSE(fs::exists(dir.path() / "plots"));
}

TEST_CASE("table and plot of a suite refuse a results root where it never ran", "[report]") {
  TempDir dir;
  const m2b::Suite suite = store_suite(dir);
  store_runs(suite, dir.path() / "results");
  const fs::path suite_file = dir.path() / "store.yaml", wrong = dir.path() / "elsewhere";
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"table", suite_file.string(), "--results", wrong.string()},
        std::vector<std::string>{"plot", suite_file.string(), "--results", wrong.string(), "--out",
                                 (dir.path() / "plots").string()}}) {
    const auto result = m2bench_cli(command);
    CHECK(result.status == m2b::cli::kExitError);
    CHECK(result.err == "m2bench: error: " + (wrong / "store").string() +
                            ": no results of suite store here: run it first (m2bench run), or "
                            "give --results with the root it ran into\n");
  }
  CHECK_FALSE(fs::exists(wrong));
  CHECK_FALSE(fs::exists(dir.path() / "plots"));
}

TEST_CASE("a failing plot script is not blamed on matplotlib unless it says so", "[report]") {
  TempDir dir;
  const m2b::Suite suite = store_suite(dir);
  store_runs(suite, dir.path() / "results");
  const auto python = [&](int status) {  // a "Python" that only exits with `status`
    const fs::path path =
        dir.write(fmt::format("python{}", status), fmt::format("#!/bin/sh\nexit {}\n", status));
    fs::permissions(path, fs::perms::owner_all);
    return path.string();
  };
  const auto plot = [&](int status) {
    return m2bench_cli({"plot", (dir.path() / "results" / "store").string(), "--python",
                        python(status), "--out", (dir.path() / "plots").string()});
  };
  const auto failed = plot(1);
  CHECK(failed.status == m2b::cli::kExitError);
  CHECK_THAT(failed.err, Catch::Matchers::Contains("plot script failed (exit status 1)"));
  CHECK_THAT(failed.err, !Catch::Matchers::Contains("matplotlib"));
  const auto no_matplotlib = plot(3);  // NO_MATPLOTLIB of plots/m2b_plotting.py
  CHECK_THAT(no_matplotlib.err, Catch::Matchers::Contains(python(3) + " has no matplotlib"));
}

// The child process of the next test: `m2bench plot $M2B_TEST_STORE --python $M2B_TEST_PYTHON`
// through the program's own entry. Hidden by its [.] tag.
TEST_CASE("plot child: m2bench plot until stopped", "[.plot_child]") {
  const char* store = std::getenv("M2B_TEST_STORE");
  const char* python = std::getenv("M2B_TEST_PYTHON");
  REQUIRE(store);
  REQUIRE(python);
  const fs::path out = fs::path(store).parent_path().parent_path() / "plots";
  std::exit(m2bench_cli({"plot", store, "--python", python, "--out", out.string()}).status);
}

TEST_CASE("a plot stopped by a signal stops its running script too", "[report]") {
  TempDir dir;
  const m2b::Suite suite = store_suite(dir);
  store_runs(suite, dir.path() / "results");
  // A "Python" that says it has started, then draws for a second.
  const fs::path started = dir.path() / "started", finished = dir.path() / "finished";
  const fs::path python = dir.write(
      "python",
      fmt::format("#!/bin/sh\ntouch {}\nsleep 1\ntouch {}\n", started.string(), finished.string()));
  fs::permissions(python, fs::perms::owner_all);
  const pid_t child = m2b::test::spawn_test_child(
      "[.plot_child]", {"M2B_TEST_STORE=" + (dir.path() / "results" / "store").string(),
                        "M2B_TEST_PYTHON=" + python.string()});
  REQUIRE(child > 0);
  REQUIRE(m2b::test::wait_for_file(started));
  ::kill(child, SIGTERM);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGTERM);
  // The script was stopped with it: it never gets to its last line.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CHECK_FALSE(fs::exists(finished));
}

TEST_CASE("plot --prefix-t rewrites the tables with their prefix-accuracy section", "[report]") {
  TempDir dir;
  const m2b::Suite suite = store_suite(dir);
  store_runs(suite, dir.path() / "results");
  const fs::path python = dir.write("python", "#!/bin/sh\nexit 0\n");  // every script succeeds
  fs::permissions(python, fs::perms::owner_all);
  const fs::path store = dir.path() / "results" / "store";
  const auto plot = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"plot",     store.string(),
                                     "--python", python.string(),
                                     "--out",    (dir.path() / "plots").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    REQUIRE(m2bench_cli(args).status == 0);
    return m2b::test::read_text(store / "table.md");
  };
  CHECK_THAT(plot({"--prefix-t", "4"}), Catch::Matchers::Contains("prefix accuracy at t = 4"));
  CHECK_THAT(plot({}), !Catch::Matchers::Contains("prefix accuracy"));
}

TEST_CASE("the training curves skip a metrics line without the numbers they need", "[report]") {
  TempDir dir;
  const m2b::Suite suite = store_suite(dir);
  const fs::path root = dir.path() / "results";
  store_runs(suite, root);
  const fs::path run = m2b::run_dir(root, suite.runs[0]);
  m2b::append_metrics(run, {{"step", 5}, {"kind", "train"}, {"loss", 0.7}, {"accuracy", 0.5}});
  m2b::append_metrics(run, {{"step", 10}, {"kind", "train"}, {"accuracy", 0.6}});  // no loss
  const fs::path out = dir.path() / "plots";
  // The Python the build found, as `m2bench plot` uses it by default.
  const auto result = m2bench_cli({"plot", (root / "store").string(), "--out", out.string()});
  if (result.err.find("has no matplotlib") != std::string::npos) {
    WARN("this build's Python has no matplotlib: " << result.err);
    return;
  }
  CAPTURE(result.err);
  CHECK(result.status == 0);
  CHECK(fs::exists(out / "training_curves_parity_train2-8.png"));
}
