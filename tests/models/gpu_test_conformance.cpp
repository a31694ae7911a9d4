// The mixer conformance suite on a CUDA device, in float32 with the mixers' default backends.
#include <torch/torch.h>

static torch::Device conformance_device() {
  if (!torch::cuda::is_available()) throw std::runtime_error("no CUDA device is available");
  return torch::Device(torch::kCUDA);
}

#include "tests/models/conformance_cases.h"
