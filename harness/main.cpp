// m2bench: one executable, one subcommand per job (see harness/cli.h).
#include <exception>
#include <iostream>

#include "harness/cli.h"

int main(int argc, char** argv) {
  CLI::App app{"m2bench: can this architecture track state? Synthetic state-tracking tasks, "
               "M2RNN and its baselines, experiment suites, tables and figures."};
  app.require_subcommand(1);
  m2b::cli::add_version_command(app);
  m2b::cli::add_tasks_command(app);
  m2b::cli::add_data_command(app);
  m2b::cli::add_models_command(app);
  m2b::cli::add_plan_command(app);
  m2b::cli::add_run_command(app);
  m2b::cli::add_table_command(app);
  m2b::cli::add_plot_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    // Errors reach the user as one line naming what was wrong and what is valid.
    std::cerr << "m2bench: error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
