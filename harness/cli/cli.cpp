// The program around the subcommands: one app with all of them, and every error as one line in
// the program's own style.
#include <algorithm>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/options.h"
#include "common/typed_text.h"
#include "harness/cli/cli.h"
#include "harness/config/run_config.h"
#include "harness/train/error_text.h"

namespace m2b::cli {

void add_results_option(CLI::App* command, std::string& results, const std::string& help) {
  command->add_option("--results", results, help)
      ->capture_default_str()
      ->check(CLI::Validator(
          [](const std::string& text) {
            return text.empty() ? std::string("expected a folder, got an empty string")
                                : std::string();
          },
          "DIR"));
}

void add_suite_arguments(CLI::App* command, std::string& suite, std::string& results,
                         const std::string& results_help) {
  command->add_option("suite", suite, "the suite file, e.g. experiments/quickstart.yaml")
      ->required();
  add_results_option(command, results, results_help);
}

// Each writes the number back in plain decimal, which CLI11 then converts: left as given, "010"
// would reach CLI11's own reading, which takes a leading 0 for octal (8).
CLI::Validator integer_in(int64_t lo, int64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) {
        const std::optional<int64_t> x = parse_int(text);
        if (!x || *x < lo || *x > hi)
          return fmt::format("expected an integer in [{}, {}], got {}", lo, hi, text);
        text = std::to_string(*x);
        return std::string();
      },
      fmt::format("INT in [{}, {}]", lo, hi));
}

CLI::Validator unsigned_integer() {
  return CLI::Validator(
      [](std::string& text) {
        const std::optional<uint64_t> x = parse_uint(text);
        if (!x) return fmt::format("expected an integer >= 0, got {}", text);
        text = std::to_string(*x);
        return std::string();
      },
      "INT >= 0");
}

void add_prefix_t_option(CLI::App* command, int64_t& prefix_t) {
  command
      ->add_option("--prefix-t", prefix_t,
                   "also tabulate the prefix accuracy at t = T: the fraction of evaluation "
                   "sequences whose first T scored predictions are all right (0: not)")
      ->transform(integer_in(0, kMaxLength));
}

int run_cli(int argc, const char* const* argv) {
  CLI::App app{
      "m2bench: can this architecture track state? Synthetic state-tracking tasks, "
      "M2RNN and its baselines, experiment suites, tables and figures."};
  app.require_subcommand(1);
  add_version_command(app);
  add_tasks_command(app);
  add_data_command(app);
  add_models_command(app);
  add_plan_command(app);
  add_run_command(app);
  add_status_command(app);
  add_slurm_command(app);
  add_table_command(app);
  add_plot_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a subcommand's own status; it has said why
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    // CLI11's own texts and exit statuses (104-109) would read unlike every other error; for a
    // mistyped command it would only say that a subcommand is required.
    std::vector<std::string> commands;
    for (const CLI::App* command : app.get_subcommands({})) commands.push_back(command->get_name());
    const bool mistyped = argc > 1 && argv[1][0] != '-' &&
                          std::find(commands.begin(), commands.end(), argv[1]) == commands.end();
    if (mistyped)
      std::cerr << fmt::format("m2bench: error: unknown command '{}' (valid: {})\n",
                               excerpt(argv[1]), fmt::join(commands, ", "));
    else
      std::cerr << "m2bench: error: " << e.what()
                << " (see m2bench --help, or m2bench COMMAND "
                   "--help)\n";
    return kExitError;
  } catch (const std::exception& e) {
    // Errors reach the user as one line naming what was wrong and what is valid.
    std::cerr << "m2bench: error: " << error_text(e) << "\n";
    return kExitError;
  }
  return 0;
}

}  // namespace m2b::cli
