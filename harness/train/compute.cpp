#include "harness/train/compute.h"

#include <ATen/autocast_mode.h>
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "harness/results/provenance.h"
#include "harness/train/evaluator.h"

#ifdef M2BENCH_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <cuda_runtime_api.h>
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
    throw std::invalid_argument(
        fmt::format("train.precision must be one of fp32, tf32, bf16; got '{}'", train.precision));
  if (train.precision != "fp32" && !cuda)
    throw std::invalid_argument(fmt::format(
        "train.precision {} needs a CUDA device, but this run computes on the CPU (train.device "
        "{}); use precision fp32 on the CPU",
        train.precision, train.device));
  // TF32 only where asked: bf16 runs keep their fp32 matmuls (outside autocast) exact too.
  at::globalContext().setFloat32MatmulPrecision(train.precision == "tf32" ? "high" : "highest");
  compute.bf16_autocast = train.precision == "bf16";
  // The resident peak (VmHWM) would otherwise span every earlier run of this process: 5 in
  // clear_refs resets it (Linux 4.0 on). Where that is refused the peak keeps the process's.
  std::ofstream("/proc/self/clear_refs") << "5";
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

// ---- the memory a run needs ------------------------------------------------------------------

namespace {

// One part of a run's memory and the settings it grows with, as a message names them.
struct MemoryPart {
  double bytes;
  std::string settings;
};

// Lower bounds only: the model's parameters, and for every token in a batch the MLP's input and
// hidden activations per layer and the logits (whatever the mixer adds).
std::vector<MemoryPart> memory_parts(const RunConfig& run) {
  const models::ModelConfig& m = run.model;
  const double d = static_cast<double>(m.d_model), layers = static_cast<double>(m.n_layers);
  const double vocab = static_cast<double>(m.vocab_size);
  const double hidden = m.mlp_hidden > 0 ? static_cast<double>(m.mlp_hidden) : 8.0 * d / 3.0;
  const double parameters = static_cast<double>(m.parameter_count());
  const double batch = static_cast<double>(run.train.batch_size);
  const int64_t longest_eval =
      run.task.eval_lengths.empty() ? 0 : run.task.eval_lengths.back();  // ascending
  const int64_t longest_eval_rows =
      evaluation_batch_rows(run.train.batch_size, run.task.train_max_length, longest_eval);
  double eval_tokens = 0;
  for (int64_t length : run.task.eval_lengths) eval_tokens += static_cast<double>(length);
  constexpr double kToken = 16;                                     // an int64 input and target
  const double activation = run.train.precision == "bf16" ? 2 : 4;  // autocast's bf16, else fp32
  return {
      {16 * parameters,  // weights, gradients, AdamW's two moments
       fmt::format("the model's {:.3g} parameters (model.d_model {}, model.n_layers {}, "
                   "model.mlp_hidden {}, the options of model.layers)",
                   parameters, m.d_model, m.n_layers, m.mlp_hidden)},
      {kToken * static_cast<double>(run.task.eval_examples) * eval_tokens,
       fmt::format("the evaluation sets (task.eval_examples {} x the task.eval_lengths)",
                   run.task.eval_examples)},
      {activation * batch * static_cast<double>(run.task.train_max_length) *
           (layers * (d + 2 * hidden) + 2 * vocab),
       fmt::format("a training batch's activations (train.batch_size {} x "
                   "task.train_max_length {})",
                   run.train.batch_size, run.task.train_max_length)},
      {activation * static_cast<double>(longest_eval_rows) * static_cast<double>(longest_eval) *
           (d + hidden + vocab),
       fmt::format("an evaluation batch's activations ({} rows, from train.batch_size {}, x the "
                   "longest of task.eval_lengths, {})",
                   longest_eval_rows, run.train.batch_size, longest_eval)},
  };
}

double device_memory_bytes(const torch::Device& device) {
#ifdef M2BENCH_HAVE_CUDA
  if (device.is_cuda()) {
    size_t free = 0, total = 0;
    if (cudaMemGetInfo(&free, &total) == cudaSuccess) return static_cast<double>(total);
  }
#endif
  (void)device;
  return static_cast<double>(::sysconf(_SC_PHYS_PAGES)) *
         static_cast<double>(::sysconf(_SC_PAGE_SIZE));
}

std::string gib(double bytes) { return fmt::format("{:.3g} GiB", bytes / (1024.0 * 1024 * 1024)); }

}  // namespace

void check_memory(const RunConfig& run) {
  const std::vector<MemoryPart> parts = memory_parts(run);
  double needed = 0;
  for (const MemoryPart& part : parts) needed += part.bytes;
  const torch::Device device = resolve_device(run.train.device);
  const double available = device_memory_bytes(device);
  if (needed <= available) return;
  const MemoryPart& largest = *std::max_element(
      parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.bytes < b.bytes; });
  throw std::invalid_argument(fmt::format(
      "run {} needs at least {} of memory, more than the {} of {}; {} of it is {}: lower those "
      "settings",
      run.id, gib(needed), gib(available), device.is_cuda() ? device_name() : "this machine",
      gib(largest.bytes), largest.settings));
}

void check_device(const RunConfig& run) {
  const bool cuda = resolve_device(run.train.device).is_cuda();
  if (const auto conflict = run.model.device_conflict(cuda ? "cuda" : "cpu"))
    throw std::invalid_argument(fmt::format(
        "train.device {} computes on {} here, but {}, or run it {}", run.train.device,
        cuda ? "cuda" : "cpu", conflict->layer,
        conflict->device == "cuda" ? "on a machine whose GPU is usable" : "with train.device cpu"));
}

// ---- peak memory ------------------------------------------------------------------------------

static int64_t resident_peak_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "... kB"
  return 0;
}

PeakMemory peak_memory(const Compute& compute) {
#ifdef M2BENCH_HAVE_CUDA
  if (compute.device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(compute.device.index());
    constexpr auto kAll = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    return {stats.allocated_bytes[kAll].peak, stats.reserved_bytes[kAll].peak};
  }
#endif
  (void)compute;
  const int64_t resident = resident_peak_bytes();
  return {resident, resident};
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
