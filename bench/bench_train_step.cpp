// One training step of a 2-layer LanguageModel per registered mixer, as `m2bench run` takes it
// (harness/train/train_step.h: the batch's copy to the device, forward, cross-entropy, backward,
// the gradient clip and AdamW): at the quickstart size on CPU, and at a GPU size when CUDA is
// available, in each precision the trainer offers, with the step replayed from a CUDA graph
// (the trainer's default) and launched eagerly (`m2bench run --no-cuda-graphs`).
// Names: BM_TrainStep/<mixer>/<device>/<precision>/<graphs|eager>/B<batch>_S<seq>_D<d_model>;
// tokens/s is the rate counter. Each iteration waits for the device, as a log step does.
// With M2BENCH_PROFILE_DIR set, each case also writes a Kineto trace of two of its steps there
// (Chrome trace JSON, <name with / as _>.json; scripts/profile_summary.py sums its kernels).
// CPU runs use M2BENCH_CPU_THREADS intra-op threads (default 1): with tensors this small, extra
// threads mostly contend, and on a shared machine they make the numbers depend on its load.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "harness/results/provenance.h"
#include "harness/train/compute.h"
#include "harness/train/train_step.h"
#include "models/lm.h"
#include "tasks/rng.h"

namespace {

using m2b::models::LanguageModel;
using m2b::models::MixerRegistry;
using m2b::models::ModelConfig;

constexpr int64_t kVocab = 16;

struct Case {
  std::string mixer, device, precision;
  bool graphs;
  int64_t batch, seq, d_model;
};

// Random tokens, every position scored: the shape is what matters here.
// The model's weights and the batch's tokens (recorded in the results' context).
constexpr uint64_t kSeed = 0;

m2b::HostBatch random_batch(const Case& c) {
  m2b::tasks::Batch batch;
  batch.rows = c.batch;
  batch.cols = c.seq;
  m2b::tasks::Rng rng(kSeed);
  for (int64_t i = 0; i < c.batch * c.seq; ++i)
    batch.inputs.push_back(static_cast<m2b::tasks::Token>(rng.below(kVocab)));
  batch.targets = batch.inputs;
  std::rotate(batch.targets.begin(), batch.targets.begin() + 1, batch.targets.end());
  batch.scored.assign(batch.inputs.size(), 1);
  return m2b::pack_batch(batch, c.seq, c.device == "cuda");
}

// Two steps under the Kineto profiler, saved as a Chrome trace.
void profile_steps(m2b::TrainStep& step, const m2b::HostBatch& batch, double lr,
                   const std::string& path) {
  namespace profiler = torch::autograd::profiler;
  using torch::profiler::impl::ActivityType;
  const torch::profiler::impl::ProfilerConfig config(torch::profiler::impl::ProfilerState::KINETO);
  const std::set<ActivityType> activities{ActivityType::CPU, ActivityType::CUDA};
  profiler::prepareProfiler(config, activities);
  profiler::enableProfiler(config, activities);
  for (int i = 0; i < 2; ++i) step.run(batch, lr);
  step.take_totals();
  profiler::disableProfiler()->save(path);
}

void train_step(benchmark::State& state, const Case& c, const std::string& name) {
  try {
    m2b::TrainSpec train;
    train.device = c.device;
    train.precision = c.precision;
    const m2b::Compute compute = m2b::setup_compute(train);
    torch::manual_seed(kSeed);
    ModelConfig config;
    config.vocab_size = kVocab;
    config.d_model = c.d_model;
    config.n_layers = 2;
    config.layers = {{c.mixer, {}}};
    LanguageModel model(config);
    model->to(compute.device);
    auto optimizer = m2b::make_adamw(model, train);
    m2b::TrainStep step(model, optimizer, train, compute, 0, c.graphs);
    const m2b::HostBatch batch = random_batch(c);
    // Warm-up: the eager first step of the shape, then its capture.
    for (int i = 0; i < 3; ++i) step.run(batch, train.lr);
    step.take_totals();
    if (c.graphs && !step.graphs_on()) {
      state.SkipWithError(step.graphs_off().c_str());
      return;
    }
    if (const char* dir = std::getenv("M2BENCH_PROFILE_DIR")) {
      std::string file = name;
      std::replace(file.begin(), file.end(), '/', '_');
      profile_steps(step, batch, train.lr, fmt::format("{}/{}.json", dir, file));
    }
    for (auto _ : state) {
      step.run(batch, train.lr);
      step.take_totals();
    }
  } catch (const std::exception& e) {
    // A mixer that throws (an unsupported size on this device, ...) is reported, not fatal.
    state.SkipWithError(e.what());
    return;
  }
  state.counters["tokens/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * c.batch * c.seq), benchmark::Counter::kIsRate);
}

void register_all() {
  std::vector<Case> cases;
  for (const auto& mixer : MixerRegistry::instance().names()) {
    for (int64_t seq : {16, 64}) cases.push_back({mixer, "cpu", "fp32", false, 32, seq, 64});
    if (!torch::cuda::is_available()) continue;
    for (const char* precision : {"fp32", "tf32", "bf16"})
      for (bool graphs : {true, false})
        cases.push_back({mixer, "cuda", precision, graphs, 64, 256, 256});
  }
  for (const Case& c : cases) {
    const std::string name =
        fmt::format("BM_TrainStep/{}/{}/{}/{}/B{}_S{}_D{}", c.mixer, c.device, c.precision,
                    c.graphs ? "graphs" : "eager", c.batch, c.seq, c.d_model);
    auto* b = benchmark::RegisterBenchmark(name.c_str(),
                                           [=](benchmark::State& s) { train_step(s, c, name); });
    b->Unit(benchmark::kMillisecond)->UseRealTime();
    // A profiling run wants the trace, not the timing: a few steps each. Set here, not by
    // --benchmark_min_time=20x, which the libbenchmark of programs built on Debian 12 (1.7)
    // refuses.
    if (std::getenv("M2BENCH_PROFILE_DIR")) b->Iterations(20);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const char* threads = std::getenv("M2BENCH_CPU_THREADS");
  torch::set_num_threads(threads ? std::stoi(threads) : 1);
  benchmark::AddCustomContext("cpu_threads", std::to_string(torch::get_num_threads()));
  // Provenance, as every results file carries it.
  benchmark::AddCustomContext("git_sha", m2b::kGitSha);
  benchmark::AddCustomContext("git_dirty", m2b::kGitDirty ? "true" : "false");
  benchmark::AddCustomContext("build_type", m2b::kBuildType);
  benchmark::AddCustomContext("libtorch", m2b::torch_version());
  benchmark::AddCustomContext("device_name", m2b::device_name());
  benchmark::AddCustomContext("seed", std::to_string(kSeed));
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
