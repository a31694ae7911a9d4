// The main of the `gpu` test programs. On a machine without a usable CUDA device they say so and
// exit with M2B_SKIP_EXIT_CODE, which ctest reports as skipped (SKIP_RETURN_CODE, set in
// CMakeLists.txt) rather than as failed: a plain `ctest` on a CPU machine stays green.
#include <cuda_runtime_api.h>

#include <cstdio>

#include "tests/catch_session.h"

int main(int argc, char** argv) {
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  if (status != cudaSuccess || devices == 0) {
    std::printf("skipped: no usable CUDA device (%s)\n",
                status != cudaSuccess ? cudaGetErrorString(status) : "none found");
    return M2B_SKIP_EXIT_CODE;
  }
  return run_catch_session(argc, argv);
}
