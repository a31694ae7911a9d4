// One training step (forward + backward) of the M2RNN recurrence op and of the whole m2rnn mixer
// on CPU, backend `reference` (LibTorch step by step) beside `cpu` (the kernel), at the
// quickstart model's size: B 32, d_model 64, K = V = 16, N = 4 heads (q and k shared), S 64 and
// 256. The target: cpu >= 20x faster than reference for a step at S = 64.
// Each runs with 1 intra-op thread and with one per core (suffix threads:N): the kernel splits
// its chains over the threads, while the reference's many tiny LibTorch ops gain nothing from
// more and often lose, so the ratio is worth reading at both.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "models/ops/m2rnn_op.h"
#include "models/mixer.h"

namespace {

using m2b::OptionValue;
using namespace m2b::models;

constexpr int64_t kBatch = 32, kDModel = 64, kHeads = 4, kK = 16, kV = 16;

// Sets LibTorch's intra-op threads (OpenMP's too, which the cpu kernel uses) for one benchmark,
// restoring the previous count after it.
class ThreadScope {
 public:
  explicit ThreadScope(int threads) : previous_(torch::get_num_threads()) {
    torch::set_num_threads(threads);
  }
  ~ThreadScope() { torch::set_num_threads(previous_); }

 private:
  int previous_;
};

void count_tokens(benchmark::State& state, int64_t S) {
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(kBatch * S),
                                                  benchmark::Counter::kIsIterationInvariantRate);
}

void recurrence_train_step(benchmark::State& state, M2rnnBackend backend, int64_t S) {
  const ThreadScope threads(static_cast<int>(state.range(0)));
  torch::manual_seed(0);
  auto leaf = [](torch::Tensor t) { return t.set_requires_grad(true); };
  auto q = leaf(torch::randn({kBatch, S, 1, kK}) * 0.5);
  auto k = leaf(torch::randn({kBatch, S, 1, kK}) * 0.5);
  auto v = leaf(torch::randn({kBatch, S, kHeads, kV}));
  auto W = leaf(torch::eye(kV).repeat({kHeads, 1, 1}));
  auto f = leaf(torch::sigmoid(torch::randn({kBatch, S, kHeads})));
  auto dy = torch::randn({kBatch, S, kHeads, kV});
  for (auto _ : state) {
    auto [y, h] = m2rnn_recurrence(q, k, v, W, f, torch::Tensor(), 1.0, backend);
    y.backward(dy);
  }
  count_tokens(state, S);
}

void mixer_train_step(benchmark::State& state, const std::string& backend, int64_t S) {
  const ThreadScope threads(static_cast<int>(state.range(0)));
  torch::manual_seed(0);
  auto mixer = make_mixer("m2rnn", kDModel,
                          {{"k_dim", OptionValue{kK}},
                           {"v_dim", OptionValue{kV}},
                           {"num_v_heads", OptionValue{kHeads}},
                           {"num_w_heads", OptionValue{kHeads}},
                           {"num_f_heads", OptionValue{kHeads}},
                           {"num_g_heads", OptionValue{kHeads}},
                           {"backend", OptionValue{backend}}});
  auto x = torch::randn({kBatch, S, kDModel});
  auto dy = torch::randn({kBatch, S, kDModel});
  for (auto _ : state) {
    mixer->forward(x).backward(dy);
    for (auto& p : mixer->parameters()) p.mutable_grad().reset();
  }
  count_tokens(state, S);
}

// On a shared machine the fastest repetition is the least disturbed one; --benchmark_repetitions
// above 1 reports it as the "min" aggregate.
double fastest(const std::vector<double>& times) {
  return *std::min_element(times.begin(), times.end());
}

void register_benchmarks() {
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  const std::vector<int64_t> thread_counts =
      cores > 1 ? std::vector<int64_t>{1, cores} : std::vector<int64_t>{1};
  for (int64_t S : {64, 256})
    for (const char* backend : {"reference", "cpu"}) {
      const std::string shape = fmt::format("B{}_S{}_N{}_K{}_V{}", kBatch, S, kHeads, kK, kV);
      benchmark::RegisterBenchmark(
          fmt::format("BM_M2rnnRecurrenceTrainStep/{}/{}", backend, shape).c_str(),
          [backend, S](benchmark::State& st) {
            recurrence_train_step(st, parse_m2rnn_backend(backend), S);
          })
          ->ArgName("threads")
          ->ArgsProduct({thread_counts})
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->ComputeStatistics("min", fastest);
      benchmark::RegisterBenchmark(
          fmt::format("BM_M2rnnMixerTrainStep/{}/D{}_{}", backend, kDModel, shape).c_str(),
          [backend, S](benchmark::State& st) { mixer_train_step(st, backend, S); })
          ->ArgName("threads")
          ->ArgsProduct({thread_counts})
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->ComputeStatistics("min", fastest);
    }
}

}  // namespace

int main(int argc, char** argv) {
  register_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
