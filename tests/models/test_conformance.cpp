// The mixer conformance suite on CPU; with M2BENCH_TEST_DEVICE=cuda the same cases run on CUDA.
#include <cstdlib>
#include <string>

#include <torch/torch.h>

static torch::Device conformance_device() {
  const char* env = std::getenv("M2BENCH_TEST_DEVICE");
  const std::string name = env ? env : "cpu";
  if (name != "cpu" && name != "cuda")
    throw std::invalid_argument("M2BENCH_TEST_DEVICE must be cpu or cuda, got '" + name + "'");
  if (name == "cuda" && !torch::cuda::is_available())
    throw std::runtime_error("M2BENCH_TEST_DEVICE=cuda but no CUDA device is available");
  return name == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

#include "tests/models/conformance_cases.h"
