// Training throughput of the quickstart models through the trainer itself
// (harness/train/trainer.h): data generation, forward, loss, backward, clipping and AdamW, as
// `m2bench run` does them.
// One iteration is a short run of kSteps steps of one model of experiments/quickstart.yaml (its
// first seed); `tokens/s` is the trainer's own measure (training tokens / training time, without
// model construction or evaluation), averaged over iterations.
//   bench_quickstart_training [--suite=experiments/quickstart.yaml] [benchmark flags]
// Run it from the repository root, or pass --suite. CPU runs use M2BENCH_CPU_THREADS intra-op
// threads (default: LibTorch's choice, as `m2bench run` uses).
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>

#include "harness/config/suite.h"
#include "harness/train/trainer.h"

namespace {

namespace fs = std::filesystem;
constexpr int64_t kSteps = 50;

m2b::RunConfig short_run(m2b::RunConfig run) {
  run.suite = "bench_quickstart_training";
  run.train.steps = kSteps;
  run.train.warmup_steps = std::min<int64_t>(run.train.warmup_steps, kSteps / 5);
  run.train.log_every = kSteps;
  run.train.eval_every = kSteps;
  run.train.checkpoint_every = kSteps;
  run.train.target_accuracy = 2.0;  // the same number of steps for every model
  run.task.eval_lengths = {run.task.train_max_length};
  run.task.eval_examples = 8;
  return run;
}

void train(benchmark::State& state, const m2b::RunConfig& run, const fs::path& dir) {
  double tokens_per_s = 0;
  try {
    for (auto _ : state) {
      // The folder is reused: without a checkpoint, a run starts over and rewrites its files.
      const auto summary = m2b::train_run(run, dir);
      tokens_per_s += summary->tokens_per_s;
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  state.counters["tokens/s"] = benchmark::Counter(tokens_per_s, benchmark::Counter::kAvgIterations);
}

void remove_run_dir(const fs::path& dir) {
  for (const char* file : {"config.yaml", "metrics.jsonl", "summary.json"}) fs::remove(dir / file);
  fs::remove(dir);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::string suite_path = "experiments/quickstart.yaml";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--suite=", 0) == 0) {
      suite_path = arg.substr(8);
    } else {
      std::cerr << "bench_quickstart_training: unknown argument '" << arg
                << "' (valid: --suite=PATH and Google Benchmark's --benchmark_* flags)\n";
      return 2;
    }
  }
  if (const char* threads = std::getenv("M2BENCH_CPU_THREADS"))
    torch::set_num_threads(std::atoi(threads));
  try {
    const m2b::Suite suite = m2b::load_suite(suite_path);
    const fs::path scratch = fs::temp_directory_path() / fmt::format("m2b-bench-{}", ::getpid());
    std::vector<fs::path> dirs;
    std::set<std::string> seen;
    for (const m2b::RunConfig& run : suite.runs) {
      if (!seen.insert(run.model_name).second) continue;
      const fs::path dir = scratch / run.model_name;
      dirs.push_back(dir);
      benchmark::RegisterBenchmark(
          fmt::format("BM_QuickstartTraining/{}/{}", run.model_name, run.task.name).c_str(),
          [run = short_run(run), dir](benchmark::State& state) { train(state, run, dir); })
          ->Unit(benchmark::kSecond)
          ->Iterations(3);
    }
    benchmark::RunSpecifiedBenchmarks();
    for (const fs::path& dir : dirs) remove_run_dir(dir);
    fs::remove(scratch);
  } catch (const std::exception& e) {
    std::cerr << "bench_quickstart_training: " << e.what() << "\n";
    return 1;
  }
  benchmark::Shutdown();
  return 0;
}
