#pragma once
// Each subcommand lives in harness/cli/cmd_<name>.cpp and adds itself to the app through one of
// these; main.cpp calls them all.
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdint>
#include <string>

namespace m2b::cli {
void add_version_command(CLI::App& app);  // cmd_version.cpp
void add_tasks_command(CLI::App& app);    // cmd_tasks.cpp: `tasks` and `data`
void add_data_command(CLI::App& app);
void add_models_command(CLI::App& app);  // cmd_models.cpp
void add_plan_command(CLI::App& app);    // cmd_plan.cpp
void add_run_command(CLI::App& app);     // cmd_run.cpp
void add_status_command(CLI::App& app);  // cmd_status.cpp
void add_slurm_command(CLI::App& app);   // cmd_slurm.cpp
void add_table_command(CLI::App& app);   // cmd_table.cpp
void add_plot_command(CLI::App& app);    // cmd_plot.cpp

// --results, the results root (cli.cpp): a folder; an empty one is refused, since it would put
// <suite>/ wherever the command runs.
void add_results_option(CLI::App* command, std::string& results, const std::string& help);
// The signals that ask m2bench to stop: Ctrl-C, `kill` / `timeout` / Slurm's preemption, and the
// terminal going away.
inline constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};

// The arguments of a command on one suite (cli.cpp): the suite file and --results.
void add_suite_arguments(
    CLI::App* command, std::string& suite, std::string& results,
    const std::string& results_help = "the results root (holds <suite>/<run-id>/)");

// Integer options (given to ->transform, since they write the number back in decimal) read as
// suite files read integers (parse_int, parse_uint) and refused in the same words, "expected an
// integer in [1, 64], got x": CLI11's own range check says "Value x not in range 1 to 64" of
// text that is no number at all, and its conversion takes a leading 0 for octal.
CLI::Validator integer_in(int64_t lo, int64_t hi);
CLI::Validator unsigned_integer();  // a seed: 0 .. 2^64 - 1

// --prefix-t T (cli.cpp), shared by `table` and `plot`, which both write the suite's tables: also
// tabulate the prefix accuracy at t = T (0: not).
void add_prefix_t_option(CLI::App* command, int64_t& prefix_t);

// The whole program (cli.cpp): parses argv, runs the subcommand it names and returns the exit
// status. Every error is one line "m2bench: error: ..." on stderr with status kExitError;
// a subcommand may end with its own status by throwing CLI::RuntimeError.
constexpr int kExitError = 2;
int run_cli(int argc, const char* const* argv);
}  // namespace m2b::cli
