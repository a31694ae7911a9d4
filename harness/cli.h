#pragma once
// Each subcommand lives in harness/cmd_<name>.cpp and adds itself to the app through one of
// these; main.cpp calls them all.
#include <CLI/CLI.hpp>

namespace m2b::cli {
void add_version_command(CLI::App& app);
void add_tasks_command(CLI::App& app);
void add_data_command(CLI::App& app);
}  // namespace m2b::cli
