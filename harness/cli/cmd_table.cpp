// `m2bench table SUITE.yaml|results/<suite>`: accuracy per model x evaluation length, written to
// results/<suite>/table.{md,csv,tex} (and runs.csv); the Markdown is printed. --prefix-t T adds
// the prefix accuracy at t = T (the fraction of examples whose first T predictions are right).
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "harness/cli/cli.h"
#include "harness/results/report.h"

namespace m2b::cli {

namespace {

struct TableArgs {
  std::string target;
  std::string results = "results";
  std::string metric = "both";
  std::string reference;
  int64_t prefix_t = 0;
};

void print_table(const TableArgs& args) {
  if (args.metric != "both" && metric_info(parse_metric(args.metric)).at_prefix_t &&
      args.prefix_t < 1)
    throw CLI::ValidationError("--metric " + args.metric, "needs --prefix-t T (T >= 1)");
  std::optional<std::filesystem::path> reference;
  if (!args.reference.empty()) reference = args.reference;
  SuiteTables made = write_suite_tables(args.target, args.results, reference, args.prefix_t);
  std::vector<Table> shown;
  for (const Table& t : made.tables)
    if (args.metric == "both" || to_string(t.metric) == args.metric) shown.push_back(t);
  std::cout << to_markdown(shown);
  std::cout << "\nwrote " << (made.source.results_dir / "table.{md,csv,tex}").string() << "\n";
  for (const std::string& problem : made.source.problems)
    std::cerr << "m2bench: warning: left out of the tables: " << problem << "\n";
}

// --metric: a name of the metric table, or both; an unknown one is refused with the valid names.
std::string valid_metric(const std::string& text) {
  if (text == "both") return "";
  try {
    parse_metric(text);
  } catch (const std::invalid_argument&) {
    return fmt::format("unknown metric '{}' (valid: {}, both)", text, metric_names());
  }
  return "";
}

// The choices as --help shows them: "{accuracy,sequence_accuracy,prefix_accuracy,both}".
std::string metric_choices() {
  std::string names;
  for (const MetricInfo& metric : metric_table()) names += fmt::format("{},", metric.name);
  return "{" + names + "both}";
}

}  // namespace

void add_table_command(CLI::App& app) {
  auto args = std::make_shared<TableArgs>();
  CLI::App* cmd = app.add_subcommand(
      "table",
      "Tabulate a suite's results: accuracy per model x evaluation length, mean ± std "
      "over seeds, into results/<suite>/table.{md,csv,tex}");
  cmd->add_option("target", args->target,
                  "a suite file (runs of its plan without a result show as missing) or a "
                  "results/<suite> folder")
      ->required();
  add_results_option(cmd, args->results, "the results root, for a suite file");
  cmd->add_option("--metric", args->metric,
                  "which table to print (both: every table made); the files hold them all")
      ->check(valid_metric, metric_choices());
  add_prefix_t_option(cmd, args->prefix_t);
  cmd->add_option("--reference", args->reference,
                  "the paper's numbers (default: reference_numbers.yaml next to the suite file)");
  cmd->callback([args] { print_table(*args); });
}

}  // namespace m2b::cli
