#pragma once
// Tables of a suite's results: accuracy per model (rows) x evaluation length (columns), mean ±
// std over seeds, one table per task, training range and metric. Nothing is dropped silently:
// a cell says how many of its runs diverged or have no result, and the paper's numbers (where
// the paper states one) sit in a row of their own beside the measured ones.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "harness/config/suite.h"
#include "harness/results/metrics.h"
#include "harness/results/results.h"

namespace m2b {

// One run as the tables see it: what was planned, and its summary if it has one.
struct TableRun {
  std::string id, model, task;  // model: the table row
  uint64_t seed = 0;
  int64_t train_min_length = 0, train_max_length = 0;
  std::vector<int64_t> eval_lengths;  // planned; a summary's own lengths count as well
  RunState state = RunState::missing;
  std::optional<RunSummary> summary;  // finished or diverged runs
  std::string config;                 // its canonical YAML (config.yaml); empty where unknown
  std::string problem;  // invalid: why its summary is not counted (StoredRun::problem)
};

// A folder of results/<suite>/ that may hold a run: not one of the store's own dot-folders
// (--fresh's .fresh-<id> staging, .old-<id>), and with a run's config or summary.
bool may_hold_run(const std::filesystem::directory_entry& entry);

// The runs of a suite's plan, with whatever results_root holds for them.
std::vector<TableRun> collect_runs(const Suite& suite, const std::filesystem::path& results_root);
// Every run folder under results/<suite>/ (one with a config.yaml or a summary.json; folders
// whose name starts with '.' are the store's own, such as --fresh's staging). A folder whose
// config.yaml cannot be read is not a run the tables can place: it goes to `unreadable`.
std::vector<TableRun> collect_runs(const std::filesystem::path& suite_results_dir,
                                   std::vector<std::string>* unreadable = nullptr);
// Where runs of one row (same task, training range and model) differ in more than their seed
// (the suite was edited between runs), each run's row label gets " KEY=VALUE" for every config
// key that differs, so that different configs are never averaged into one cell.
void split_rows_by_config(std::vector<TableRun>& runs);
// What the tables leave out and why: the problem of every invalid run, one line each.
std::vector<std::string> problems(const std::vector<TableRun>& runs);

// What the paper states about one model on one task (experiments/paper/reference_numbers.yaml).
struct ReferenceNumber {
  std::string task, model;
  std::vector<Metric> metrics;  // the metrics the statement speaks for (none read at a t)
  double length_ratio = 1;      // evaluation length / training max length
  std::optional<double> value;  // none where the paper gives no number
  std::string claim;            // the paper's words, e.g. "perfect", "fails"
  std::string source;
};
// Throws ConfigError (file:line:column) for a malformed file.
std::vector<ReferenceNumber> load_reference_numbers(const std::filesystem::path& path);

struct Cell {
  std::vector<double> values;  // one per finished run evaluated at this length
  int diverged = 0, missing = 0;
  int runs() const { return static_cast<int>(values.size()) + diverged + missing; }
  double mean() const;
  double std() const;  // sample standard deviation (n - 1); 0 for one value
};

struct Table {
  std::string task;
  int64_t train_min_length = 0, train_max_length = 0;
  Metric metric = Metric::accuracy;
  int64_t prefix_t = 0;                  // the t of a metric read at one (MetricInfo::at_prefix_t)
  std::vector<int64_t> lengths;          // columns, ascending
  std::vector<std::string> models;       // rows, in plan order
  std::vector<std::vector<Cell>> cells;  // [model][length]
  std::vector<ReferenceNumber> references;  // those for this task, metric and these models
  bool in_training_range(int64_t length) const {
    return length >= train_min_length && length <= train_max_length;
  }
};

// prefix_t: the t of the tables of metrics read at one (>= 1 when metrics holds such a one).
std::vector<Table> build_tables(const std::vector<TableRun>& runs,
                                const std::vector<Metric>& metrics,
                                const std::vector<ReferenceNumber>& references,
                                int64_t prefix_t = 0);
// The metric as table.csv names it: "accuracy", "sequence_accuracy", "prefix_accuracy@128".
std::string metric_label(const Table& table);

std::string to_markdown(const std::vector<Table>& tables);
std::string to_csv(const std::vector<Table>& tables);  // long form: one line per cell
std::string to_latex(const std::vector<Table>& tables);
// id, model, task, seed, training range and state of every run (what the plot scripts read),
// and its provenance: git SHA and dirty flag, device, LibTorch and CUDA versions, wall time.
std::string runs_csv(const std::vector<TableRun>& runs);
// What produced the runs with results, one line per aspect (code, device, versions, seeds, wall
// time), each distinct value with its run count; table.md and table.tex end with these.
std::vector<std::string> provenance_lines(const std::vector<TableRun>& runs);

// Writes table.md, table.csv, table.tex (the first and last with the provenance lines and the
// `problems`: what was left out and why) and runs.csv into `dir`, each atomically.
void write_tables(const std::filesystem::path& dir, const std::vector<Table>& tables,
                  const std::vector<TableRun>& runs, const std::vector<std::string>& problems = {});

// What `m2bench table` and `m2bench plot` work on: a suite file (its plan; missing runs
// included) or a results/<suite> folder (whatever it holds). A folder without a single run
// folder is refused (std::invalid_argument), so that nothing is written into a folder that is
// not a suite's results.
struct ReportSource {
  std::string suite;
  std::filesystem::path results_dir;  // results/<suite>
  std::vector<TableRun> runs;
  std::optional<std::filesystem::path> reference_numbers;  // next to the suite file, if there
  std::vector<std::string> problems;  // bad summaries and unreadable run folders, one line each
};
ReportSource open_report_source(const std::filesystem::path& target,
                                const std::filesystem::path& results_root);

// `m2bench table`: opens the source, builds the tables of every metric (one read at a t, such as
// prefix accuracy, at prefix_t and only when it is >= 1) with the reference numbers given, else
// those next to the suite file, and writes them into results/<suite>/.
struct SuiteTables {
  ReportSource source;
  std::vector<Table> tables;
};
SuiteTables write_suite_tables(const std::filesystem::path& target,
                               const std::filesystem::path& results_root,
                               const std::optional<std::filesystem::path>& reference_numbers,
                               int64_t prefix_t = 0);

}  // namespace m2b
