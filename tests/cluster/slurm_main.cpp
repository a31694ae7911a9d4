// The main of the `slurm` tests: a one-node Slurm cluster (slurm_cluster.sh) runs for the whole
// program, its clients reaching it through SLURM_CONF. Where none can start (not root, no
// slurm-wlm) the program exits with M2B_SKIP_EXIT_CODE, which ctest reports as skipped, unless
// M2BENCH_SLURM_REQUIRED=1 says that this machine must run them (CI sets it).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/catch_session.h"

namespace fs = std::filesystem;

static int cluster(const std::string& action, const fs::path& dir) {
  const std::string command =
      std::string(M2B_SLURM_CLUSTER) + " " + action + " '" + dir.string() + "'";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char** argv) {
  const fs::path dir =
      fs::temp_directory_path() / ("m2b_slurm_cluster_" + std::to_string(::getpid()));
  const int started = cluster("start", dir);
  std::error_code ignored;
  if (started != 0) {
    fs::remove_all(dir, ignored);
    const char* required = std::getenv("M2BENCH_SLURM_REQUIRED");
    if (started == M2B_SKIP_EXIT_CODE && !(required && std::string(required) == "1")) {
      std::printf("skipped: no Slurm cluster can start here (see above)\n");
      return M2B_SKIP_EXIT_CODE;
    }
    std::printf("the Slurm cluster did not start (status %d)\n", started);
    return 1;
  }
  ::setenv("SLURM_CONF", (dir / "slurm.conf").c_str(), 1);
  const int result = run_catch_session(argc, argv);
  cluster("stop", dir);
  fs::remove_all(dir, ignored);
  return result;
}
