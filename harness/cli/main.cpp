// m2bench: one executable, one subcommand per job (see harness/cli/cli.h).
#include "harness/cli/cli.h"

int main(int argc, char** argv) { return m2b::cli::run_cli(argc, argv); }
