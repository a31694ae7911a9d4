#include "harness/results/provenance.h"

#include <torch/torch.h>
#ifdef M2BENCH_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace m2b {

std::string torch_version() { return TORCH_VERSION; }

bool cuda_compiled() {
#ifdef M2BENCH_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

bool cuda_available() { return cuda_compiled() && torch::cuda::is_available(); }

std::string device_name() {
#ifdef M2BENCH_HAVE_CUDA
  if (cuda_available()) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) return prop.name;
  }
#endif
  return "cpu";
}

}  // namespace m2b
