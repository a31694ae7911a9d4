#include "harness/results/metrics.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace m2b {

const std::vector<MetricInfo>& metric_table() {
  static const std::vector<MetricInfo> table = {
      {Metric::accuracy, "accuracy", "accuracy", false,
       [](const EvalResult& r, int64_t) -> std::optional<double> { return r.accuracy; }},
      {Metric::sequence_accuracy, "sequence_accuracy", "sequence accuracy", false,
       [](const EvalResult& r, int64_t) -> std::optional<double> { return r.sequence_accuracy; }},
      {Metric::prefix_accuracy, "prefix_accuracy", "prefix accuracy", true,
       [](const EvalResult& r, int64_t t) -> std::optional<double> {
         if (r.prefix_accuracy.empty()) return std::nullopt;
         return r
             .prefix_accuracy[std::min<size_t>(static_cast<size_t>(t), r.prefix_accuracy.size()) -
                              1];
       }},
  };
  return table;
}

const MetricInfo& metric_info(Metric metric) {
  for (const MetricInfo& info : metric_table())
    if (info.metric == metric) return info;
  throw std::logic_error("a Metric without a row in metric_table()");
}

std::string to_string(Metric metric) { return metric_info(metric).name; }

std::string metric_names(bool with_prefix_t_metrics) {
  std::vector<std::string> names;
  for (const MetricInfo& info : metric_table())
    if (with_prefix_t_metrics || !info.at_prefix_t) names.push_back(info.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

Metric parse_metric(const std::string& text, bool with_prefix_t_metrics) {
  for (const MetricInfo& info : metric_table())
    if (text == info.name && (with_prefix_t_metrics || !info.at_prefix_t)) return info.metric;
  throw std::invalid_argument(
      fmt::format("unknown metric '{}' (valid: {})", text, metric_names(with_prefix_t_metrics)));
}

}  // namespace m2b
