#pragma once
// The metrics a table can show, in one table: what configs, the CLI and table.csv call each, what
// a table's heading calls it and how it is read from an evaluation result. A new metric is one
// row of metric_table() (harness/results/metrics.cpp); the tables, `m2bench table --metric` and the
// reference numbers read it from there.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "harness/results/results.h"

namespace m2b {

// prefix_accuracy: at a chosen t (Table::prefix_t), the fraction of examples whose first t scored
// predictions are all right (EvalResult::prefix_accuracy); a t past an evaluation length's
// curve reads its end (the whole sequence). Runs whose summaries predate it count as missing.
enum class Metric { accuracy, sequence_accuracy, prefix_accuracy };

struct MetricInfo {
  Metric metric;
  const char* name;   // in configs, the CLI and table.csv
  const char* title;  // in table headings
  // Read at a prefix length t (`m2bench table --prefix-t T`): its heading says "at t = T" and its
  // table.csv label is "NAME@T". The paper's reference numbers state no t, so they never name it.
  bool at_prefix_t;
  // Its value in one result; none where the result does not hold it (an older summary).
  std::optional<double> (*value)(const EvalResult& result, int64_t prefix_t);
};

const std::vector<MetricInfo>& metric_table();
const MetricInfo& metric_info(Metric metric);
std::string to_string(Metric metric);
// The names of the metrics, comma-separated, as error messages list the valid ones; without
// with_prefix_t_metrics only those read without a prefix length t.
std::string metric_names(bool with_prefix_t_metrics = true);
// Throws std::invalid_argument naming the valid ones; with_prefix_t_metrics as in metric_names.
Metric parse_metric(const std::string& text, bool with_prefix_t_metrics = true);

}  // namespace m2b
