// `m2bench status SUITE.yaml`: runs finished, diverged, training (with host, GPU, step, tokens/s
// and ETA), stopped and missing, and the suite's ETA, read from the run folders.
#include <iostream>
#include <memory>
#include <string>

#include "harness/cli/cli.h"
#include "harness/config/suite.h"
#include "harness/results/suite_status.h"

namespace m2b::cli {

namespace {

struct StatusArgs {
  std::string suite;
  std::string results = "results";
};

}  // namespace

void add_status_command(CLI::App& app) {
  auto args = std::make_shared<StatusArgs>();
  CLI::App* cmd = app.add_subcommand(
      "status",
      "Where a suite stands: runs finished, diverged, training (host, GPU, step, "
      "tokens/s, ETA), stopped and missing, and the suite's ETA; read from the run "
      "folders, so it works from any machine that sees the results root");
  add_suite_arguments(cmd, args->suite, args->results);
  cmd->callback([args] {
    const Suite suite = load_suite(args->suite);
    std::cout << format_status(suite, args->results, suite_status(suite, args->results));
  });
}

}  // namespace m2b::cli
