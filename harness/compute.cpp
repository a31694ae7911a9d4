#include "harness/compute.h"

#include <ATen/autocast_mode.h>
#include <fmt/format.h>

#include <fstream>
#include <stdexcept>

#include "harness/version.h"

#ifdef M2BENCH_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace m2b {

static torch::Device resolve_device(const std::string& device) {
  if (device == "cpu") return torch::kCPU;
  if (device == "auto") return cuda_available() ? torch::Device(torch::kCUDA, 0) : torch::kCPU;
  if (device == "cuda") {
    if (!cuda_available())
      throw std::invalid_argument(fmt::format(
          "train.device is cuda but no CUDA device is usable here (this build {} the CUDA code); "
          "use device auto or cpu",
          cuda_compiled() ? "has" : "lacks"));
    return torch::Device(torch::kCUDA, 0);
  }
  throw std::invalid_argument(
      fmt::format("train.device must be one of auto, cpu, cuda; got '{}'", device));
}

Compute setup_compute(const TrainSpec& train) {
  Compute compute;
  compute.device = resolve_device(train.device);
  const bool cuda = compute.device.is_cuda();
  if (train.precision != "fp32" && train.precision != "tf32" && train.precision != "bf16")
    throw std::invalid_argument(fmt::format(
        "train.precision must be one of fp32, tf32, bf16; got '{}'", train.precision));
  if (train.precision != "fp32" && !cuda)
    throw std::invalid_argument(fmt::format(
        "train.precision {} needs a CUDA device, but this run computes on the CPU (train.device "
        "{}); use precision fp32 on the CPU",
        train.precision, train.device));
  // TF32 only where asked: bf16 runs keep their fp32 matmuls (outside autocast) exact too.
  at::globalContext().setFloat32MatmulPrecision(train.precision == "tf32" ? "high" : "highest");
  compute.bf16_autocast = train.precision == "bf16";
#ifdef M2BENCH_HAVE_CUDA
  if (cuda) {
    // The caching allocator knows no device before CUDA's lazy initialisation, which the first
    // tensor on the device triggers; resetting its statistics before that throws.
    torch::empty({1}, torch::TensorOptions().device(compute.device));
    c10::cuda::CUDACachingAllocator::resetPeakStats(compute.device.index());
  }
#endif
  return compute;
}

static int64_t resident_peak_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "... kB"
  return 0;
}

int64_t peak_memory_bytes(const Compute& compute) {
#ifdef M2BENCH_HAVE_CUDA
  if (compute.device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(compute.device.index());
    return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)]
        .peak;
  }
#endif
  (void)compute;
  return resident_peak_bytes();
}

AutocastGuard::AutocastGuard(const Compute& compute) : active_(compute.bf16_autocast) {
  if (!active_) return;
  was_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
  previous_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  at::autocast::set_autocast_enabled(at::kCUDA, was_enabled_);
  at::autocast::set_autocast_dtype(at::kCUDA, previous_dtype_);
  // The cast weights are cached for the duration of an autocast region only.
  if (!was_enabled_) at::autocast::clear_cache();
}

}  // namespace m2b
