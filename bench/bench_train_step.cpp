// One training step (forward, cross-entropy loss, backward) of a 2-layer LanguageModel per
// registered mixer: at the quickstart size on CPU, and at a GPU size when CUDA is available.
// Names: BM_TrainStep/<mixer>/<device>/B<batch>_S<seq>_D<d_model>; tokens/s is the rate counter.
// CPU runs use M2BENCH_CPU_THREADS intra-op threads (default 1): with tensors this small, extra
// threads mostly contend, and on a shared machine they make the numbers depend on its load.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdlib>
#include <string>

#include "models/lm.h"

namespace {

using m2b::models::LanguageModel;
using m2b::models::MixerRegistry;
using m2b::models::ModelConfig;

constexpr int64_t kVocab = 16;

struct Shape {
  int64_t batch, seq, d_model;
};

void train_step(benchmark::State& state, const std::string& mixer, torch::Device device,
                Shape shape) {
  torch::manual_seed(0);
  ModelConfig config;
  config.vocab_size = kVocab;
  config.d_model = shape.d_model;
  config.n_layers = 2;
  config.layers = {{mixer, {}}};
  LanguageModel model(config);
  model->to(device);
  auto tokens = torch::randint(0, kVocab, {shape.batch, shape.seq},
                               torch::TensorOptions().dtype(torch::kLong).device(device));
  auto targets = tokens.roll(1, 1);
  auto run = [&] {
    model->zero_grad();
    auto logits = model->forward(tokens);
    torch::nn::functional::cross_entropy(logits.view({-1, kVocab}), targets.view({-1}))
        .backward();
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  // A mixer that throws (an unsupported size on this device, ...) is reported, not fatal.
  try {
    run();  // warm-up: allocator, cuDNN/cuBLAS plans
    for (auto _ : state) run();
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  state.counters["tokens/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * shape.batch * shape.seq),
      benchmark::Counter::kIsRate);
}

void register_all() {
  const std::vector<Shape> cpu_shapes = {{32, 16, 64}, {32, 64, 64}};
  const Shape gpu_shape = {64, 256, 256};
  for (const auto& mixer : MixerRegistry::instance().names()) {
    auto add = [&](torch::Device device, Shape shape) {
      const std::string name = fmt::format("BM_TrainStep/{}/{}/B{}_S{}_D{}", mixer,
                                           device.is_cuda() ? "cuda" : "cpu", shape.batch,
                                           shape.seq, shape.d_model);
      benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) {
        train_step(s, mixer, device, shape);
      })->Unit(benchmark::kMillisecond)->UseRealTime();
    };
    for (const auto& shape : cpu_shapes) add(torch::kCPU, shape);
    if (torch::cuda::is_available()) add(torch::kCUDA, gpu_shape);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const char* threads = std::getenv("M2BENCH_CPU_THREADS");
  torch::set_num_threads(threads ? std::stoi(threads) : 1);
  benchmark::AddCustomContext("cpu_threads", std::to_string(torch::get_num_threads()));
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
