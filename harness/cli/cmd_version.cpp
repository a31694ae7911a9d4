#include <fmt/format.h>

#include "harness/cli/cli.h"
#include "harness/results/provenance.h"

namespace m2b::cli {

void add_version_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "version", "Print the git SHA, build type, LibTorch version and CUDA support");
  cmd->callback([] {
    fmt::print("m2bench {}{}\nbuild type: {}\nlibtorch: {}\ncuda: {} (compiled {}, device {})\n",
               kGitSha, kGitDirty ? " (dirty)" : "", kBuildType, torch_version(),
               cuda_available() ? "yes" : "no", cuda_compiled() ? "yes" : "no", device_name());
  });
}

}  // namespace m2b::cli
