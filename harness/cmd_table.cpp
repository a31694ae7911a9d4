#include "harness/cli.h"
// Placeholder: replaced by the work that owns this command.
namespace m2b::cli {
void add_table_command(CLI::App&) {}
}  // namespace m2b::cli
