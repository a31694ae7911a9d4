#pragma once
// Where and in what precision a run computes, from train.device and train.precision:
//   device    auto (CUDA when a device is present, else CPU) | cpu | cuda
//   precision fp32 (strict fp32 matmuls) | tf32 (fp32 with TF32 matmuls) | bf16 (bf16 autocast
//             with fp32 weights and optimiser); tf32 and bf16 need CUDA.
// Peak memory is read here too since it depends on the device.
#include <torch/torch.h>

#include <string>

#include "harness/config/run_config.h"

namespace m2b {

struct Compute {
  torch::Device device = torch::kCPU;
  bool bf16_autocast = false;
};

// Resolves the device, sets the process-wide matmul precision for it and resets the device's
// peak-memory counter. Throws std::invalid_argument naming train.device / train.precision when a
// value is unknown or cannot be met on this machine.
Compute setup_compute(const TrainSpec& train);

// Refuses, before anything is written, a run with a layer that cannot compute on the device
// train.device resolves to here (a GPU-only backend where auto lands on the CPU, ...). Throws
// std::invalid_argument naming the layer's option and its valid values.
void check_device(const RunConfig& run);

// Refuses, before anything is written, a run that cannot fit in the memory of the device it would
// run on: a lower bound on its peak (fp32 weights, gradients and AdamW's two moments; the
// evaluation sets; the activations of its largest training or evaluation batch) against the
// device's whole memory, so no run that could fit is refused. Throws std::invalid_argument
// naming the settings behind the largest part, which are the ones to lower.
void check_memory(const RunConfig& run);

// Bytes since setup_compute, on CUDA the caching allocator's peaks of allocated and of reserved
// memory; on CPU both the process's peak resident set (VmHWM) since setup_compute reset it, or
// since the process began where the kernel refuses that reset.
struct PeakMemory {
  int64_t allocated = 0, reserved = 0;
};
PeakMemory peak_memory(const Compute& compute);

// bf16 autocast on CUDA for the lifetime of the guard when the run asks for it; otherwise nothing.
class AutocastGuard {
 public:
  explicit AutocastGuard(const Compute& compute);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_;
  bool was_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kHalf;
};

}  // namespace m2b
