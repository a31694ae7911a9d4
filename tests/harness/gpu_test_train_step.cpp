// The training step on a CUDA device: replaying it from CUDA graphs gives the losses of launching
// it eagerly, for every mixer, over 100 steps whose lengths switch between several graphs that
// share one memory pool; and a graph-replayed run stopped at a checkpoint resumes to the
// unbroken run's results (the fused AdamW's state goes through the checkpoint).
#include <cmath>

#include "harness/train/batch_stream.h"
#include "harness/train/compute.h"
#include "harness/train/train_step.h"
#include "harness/train/trainer.h"
#include "tasks/registry.h"
#include "tests/catch.h"
#include "tests/harness/suite_fixtures.h"
#include "tests/harness/tiny_run.h"

using namespace m2b;
using Catch::Matchers::WithinRel;

namespace {

// Per-step losses of 100 steps of a fresh 2-layer model on S3 (lengths 2..6, so up to five
// shapes), with graphs on or off.
std::vector<double> losses(const std::string& mixer, bool graphs) {
  TrainSpec train;
  train.device = "cuda";
  train.lr = 3e-3;
  const Compute compute = setup_compute(train);
  const auto task = tasks::make_task("s3", {});
  const tasks::LengthSplit split{2, 6, {6}};
  torch::manual_seed(0);
  models::ModelConfig config;
  config.vocab_size = static_cast<int64_t>(task->vocabulary().size());
  config.d_model = 32;
  config.n_layers = 2;
  config.layers = {{mixer, {}}};
  models::LanguageModel model(config);
  model->to(compute.device);
  auto optimizer = make_adamw(model, train);
  TrainStep step(model, optimizer, train, compute, 0, graphs);
  std::vector<double> out;
  for (int64_t s = 1; s <= 100; ++s) {
    const auto batch = training_batch(*task, split, 16, /*seed=*/5, s);
    step.run(pack_batch(batch, batch.cols, /*pinned=*/true), train.lr);
    out.push_back(step.take_totals().loss_sum);
  }
  if (graphs) CHECK(step.graphs_on());
  INFO(step.graphs_off());
  return out;
}

}  // namespace

// The largest relative difference between two runs' per-step losses.
double worst_relative(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(std::isfinite(a[i]));
    worst = std::max(worst, std::abs(b[i] - a[i]) / std::abs(a[i]));
  }
  return worst;
}

TEST_CASE("a step replayed from CUDA graphs gives the eager step's losses over 100 steps",
          "[train_step][gpu]") {
  for (const auto& mixer : models::MixerRegistry::instance().names()) {
    INFO("mixer " << mixer);
    const auto eager = losses(mixer, false), graphed = losses(mixer, true);
    // The eager step against itself: zero where every kernel is deterministic; atomics (the
    // fused M2RNN backward's shared heads) reorder sums, and 100 steps of training amplify that.
    const double noise = worst_relative(eager, losses(mixer, false));
    const double worst = worst_relative(eager, graphed);
    INFO("graphs vs eager " << worst << ", eager vs eager " << noise);
    if (noise == 0) CHECK(worst == 0);  // bitwise
    else CHECK(worst <= std::max(1e-5, 10 * noise));
    CHECK(eager.back() < eager.front());  // it learns: the comparison is not of two flat lines
  }
}

TEST_CASE("a graph-replayed run stopped at a checkpoint resumes to the unbroken run's results",
          "[train_step][gpu]") {
  test::TempDir scratch;
  RunConfig run = test::resolved([] {
    RunConfig r = test::tiny_run("s3", 40);
    r.train.device = "cuda";
    return r;
  }());
  const auto unbroken = train_run(run, scratch.path() / "unbroken", TrainOptions{});
  TrainOptions stop_at_20;
  stop_at_20.stop_requested = [](int64_t step) { return step == 20; };
  REQUIRE_FALSE(train_run(run, scratch.path() / "resumed", stop_at_20));
  const auto resumed = train_run(run, scratch.path() / "resumed", TrainOptions{});
  REQUIRE(unbroken);
  REQUIRE(resumed);
  for (size_t i = 0; i < unbroken->eval.size(); ++i) {
    INFO("length " << unbroken->eval[i].length);
    CHECK_THAT(resumed->eval[i].loss, WithinRel(unbroken->eval[i].loss, 1e-4));
  }
}
