// Throughput of the CUDA M2RNN recurrence: fused kernels vs the cuBLAS baseline, forward and
// forward+backward, at the shapes of docs/gpu-kernels.md (q and k shared by all heads,
// gradient clipping 1.0). `fused` checkpoints every 64 steps (the default); `fused_ck<N>` every N,
// the smallest interval the kernels take, so that the backward recomputes the fewest states before
// each chunk's gradient pass: the memory a researcher can trade for backward time. Each repetition
// times one call with CUDA events (manual time); run with --benchmark_repetitions=R
// --benchmark_report_aggregates_only=true for the median.
// plots/kernel_throughput.py turns the JSON output into results/kernels/<gpu>.{json,md} and a
// figure.
#include <benchmark/benchmark.h>
#include <cublas_v2.h>

#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tests/kernels/m2rnn_gpu_problem.h"

namespace {

using namespace m2b::testing;
using kc::M2rnnCudaOptions;
using kc::M2rnnMath;

constexpr uint64_t kSeed = 20260101;

struct BenchShape {
  const char* name;
  int64_t B, S, N, K, V;
  bool bf16;
};
const BenchShape kShapes[] = {
    {"lm400m", 8, 4096, 84, 64, 16, true},
    {"statetrack", 256, 256, 8, 32, 16, false},
    {"wide", 8, 2048, 16, 64, 64, true},
};

ProblemSpec spec_of(const BenchShape& b) {
  ProblemSpec spec;
  auto& s = spec.shape;
  s.B = b.B, s.S = b.S, s.K = b.K, s.V = b.V;
  s.Nq = s.Nk = 1;
  s.Nv = s.Nw = s.Nf = b.N;
  spec.grad_clip = 1.0;
  spec.seed = kSeed;
  return spec;
}

// Times fn() with CUDA events, once per benchmark iteration, after one untimed warm-up call.
void time_calls(benchmark::State& state, const std::function<void()>& fn) {
  cudaEvent_t start, stop;
  cuda_ok(cudaEventCreate(&start), "event");
  cuda_ok(cudaEventCreate(&stop), "event");
  fn();
  cuda_ok(cudaDeviceSynchronize(), "warm-up");
  for (auto _ : state) {
    cuda_ok(cudaEventRecord(start), "record");
    fn();
    cuda_ok(cudaEventRecord(stop), "record");
    cuda_ok(cudaEventSynchronize(stop), "sync");
    float ms = 0;
    cuda_ok(cudaEventElapsedTime(&ms, start, stop), "elapsed");
    state.SetIterationTime(ms * 1e-3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

enum class Backend { fused, fused_ck_tile, fused_exact, cublas };

// The uploaded problem of one shape, shared by its cases and their repetitions (each repetition is
// one call of run()): generating lm400m's inputs on the host takes seconds, more than all its
// timed calls. Benchmarks run in registration order, shape by shape, so one shape is kept.
template <typename T>
const typename Problem<T>::Device& device_problem(const BenchShape& shape) {
  static std::string cached;
  static std::optional<typename Problem<T>::Device> dev;
  if (cached != shape.name) {
    dev.reset();
    dev.emplace(Problem<T>(spec_of(shape)).upload());
    cached = shape.name;
  }
  return *dev;
}

M2rnnCudaOptions options_of(const BenchShape& shape, Backend backend) {
  M2rnnCudaOptions o;
  o.math = backend == Backend::fused_exact ? M2rnnMath::exact : M2rnnMath::tensor;
  if (backend == Backend::fused_ck_tile)
    o.state_checkpoint_every = shape.bf16
                                   ? kc::m2rnn_fused_tile_steps<kc::bf16>(spec_of(shape).shape, o)
                                   : kc::m2rnn_fused_tile_steps<float>(spec_of(shape).shape, o);
  return o;
}

template <typename T>
void run(benchmark::State& state, const BenchShape& shape, Backend backend, bool backward) {
  const ProblemSpec spec = spec_of(shape);
  const auto& s = spec.shape;
  const auto& dev = device_problem<T>(shape);
  state.counters["S"] = static_cast<double>(s.S);
  if (backend == Backend::cublas) {
    cublasHandle_t handle;
    if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS)
      return state.SkipWithError("cublasCreate failed");
    DeviceArray<float> states(kc::m2rnn_cublas_states_bytes(s) / 4);
    DeviceArray<char> ws(kc::m2rnn_cublas_workspace_bytes<T>(s));
    time_calls(state, [&] {
      kc::m2rnn_cublas_forward<T>(dev.fwd, states.get(), ws.get(), ws.size(), handle, nullptr);
      if (backward)
        kc::m2rnn_cublas_backward<T>(dev.bwd, states.get(), ws.get(), ws.size(), handle, nullptr);
    });
    state.counters["saved_state_bytes"] = static_cast<double>(kc::m2rnn_cublas_states_bytes(s));
    cublasDestroy(handle);
    return;
  }
  const M2rnnCudaOptions o = options_of(shape, backend);
  DeviceArray<float> ck(kc::m2rnn_checkpoint_bytes(s, o) / 4);
  DeviceArray<char> ws(kc::m2rnn_fused_backward_workspace_bytes<T>(s, o));
  time_calls(state, [&] {
    kc::m2rnn_fused_forward<T>(dev.fwd, o, ck.get(), nullptr);
    if (backward) kc::m2rnn_fused_backward<T>(dev.bwd, o, ck.get(), ws.get(), ws.size(), nullptr);
  });
  state.counters["saved_state_bytes"] = static_cast<double>(kc::m2rnn_checkpoint_bytes(s, o));
  state.counters["all_states_bytes"] =
      static_cast<double>(kc::m2rnn_all_states_bytes(s, sizeof(T)));
  state.counters["state_checkpoint_every"] = static_cast<double>(o.state_checkpoint_every);
}

void register_all() {
  for (const BenchShape& shape : kShapes) {
    const std::string ck_tile =
        "fused_ck" +
        std::to_string(options_of(shape, Backend::fused_ck_tile).state_checkpoint_every);
    std::vector<std::pair<Backend, std::string>> backends = {
        {Backend::fused, "fused"}, {Backend::fused_ck_tile, ck_tile}, {Backend::cublas, "cublas"}};
    if (!shape.bf16) backends.insert(backends.begin() + 2, {Backend::fused_exact, "fused_exact"});
    for (const auto& [backend, backend_name] : backends)
      for (bool backward : {false, true}) {
        const std::string name = std::string("m2rnn/") + shape.name + "/" +
                                 (shape.bf16 ? "bf16" : "fp32") + "/" + backend_name + "/" +
                                 (backward ? "fwd_bwd" : "fwd");
        auto fn = [shape, backend = backend, backward](benchmark::State& st) {
          if (shape.bf16) run<kc::bf16>(st, shape, backend, backward);
          else run<float>(st, shape, backend, backward);
        };
        benchmark::RegisterBenchmark(name.c_str(), fn)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond)
            ->Iterations(1);
      }
  }
}

void add_context() {
  int device = 0, driver = 0, runtime = 0;
  cudaDeviceProp prop{};
  cuda_ok(cudaGetDevice(&device), "device");
  cuda_ok(cudaGetDeviceProperties(&prop, device), "properties");
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  benchmark::AddCustomContext("device_name", prop.name);
  benchmark::AddCustomContext("sm_count", std::to_string(prop.multiProcessorCount));
  benchmark::AddCustomContext("cuda_driver_version", std::to_string(driver));
  benchmark::AddCustomContext("cuda_runtime_version", std::to_string(runtime));
  benchmark::AddCustomContext("seed", std::to_string(kSeed));
#ifdef M2B_BACKWARD_SKIP
  // A timing-only build (scripts/ablate-backward.sh): its backward leaves these phases out.
  benchmark::AddCustomContext("backward_skip", std::to_string(M2B_BACKWARD_SKIP));
#endif
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  add_context();
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
