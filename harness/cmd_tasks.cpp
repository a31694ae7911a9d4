#include "harness/cli.h"
namespace m2b::cli {
void add_tasks_command(CLI::App&) {}  // placeholder until the tasks work lands
void add_data_command(CLI::App&) {}
}  // namespace m2b::cli
