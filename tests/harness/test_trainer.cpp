// The trainer: it learns, it writes its results, it stops early, and it notices divergence.
#include <fstream>
#include <sstream>

#include "harness/results/results.h"
#include "harness/train/compute.h"
#include "harness/train/lr_schedule.h"
#include "harness/train/scoring.h"
#include "harness/train/trainer.h"
#include "tests/catch.h"
#include "tests/harness/suite_fixtures.h"
#include "tests/harness/tiny_run.h"

using namespace m2b;
using m2b::test::resolved;
using m2b::test::read_text;
using m2b::test::TempDir;
using m2b::test::tiny_run;
using Catch::Matchers::WithinRel;
namespace fs = std::filesystem;

// The message of what `f` throws (Catch2 v2 and v3 name their substring matchers differently).
template <typename F>
static std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

static std::vector<nlohmann::json> lines_of_kind(const fs::path& dir, const std::string& kind) {
  std::vector<nlohmann::json> out;
  for (const auto& line : read_metrics(dir))
    if (line.at("kind") == kind) out.push_back(line);
  return out;
}

TEST_CASE("training a tiny model on parity lowers its loss and writes every results file",
          "[trainer]") {
  TempDir scratch;
  const RunConfig run = resolved(tiny_run("parity", 60));
  std::ostringstream progress;
  TrainOptions options;
  options.progress = &progress;
  const auto summary = train_run(run, scratch.path(), options);
  REQUIRE(summary);

  const auto train = lines_of_kind(scratch.path(), "train");
  REQUIRE(train.size() == 12);  // every 5 steps
  CHECK(train.back().at("loss").get<double>() < 0.5 * train.front().at("loss").get<double>());
  CHECK(train.back().at("step") == 60);

  // Evaluations at steps 20 and 40, and the final one at 60, each at both lengths.
  const auto eval = lines_of_kind(scratch.path(), "eval");
  REQUIRE(eval.size() == 6);
  CHECK(eval[0].at("step") == 20);
  CHECK(eval[0].at("length") == 8);
  CHECK(eval[1].at("length") == 16);
  CHECK(eval[5].at("step") == 60);

  CHECK(summary->status == "finished");
  CHECK(summary->steps == 60);
  CHECK_FALSE(summary->stopped_early);
  CHECK_FALSE(summary->diverged_at_step);
  REQUIRE(summary->eval.size() == 2);
  CHECK(summary->eval[0].length == 8);
  CHECK(summary->eval[0].accuracy == eval[4].at("accuracy").get<double>());
  CHECK(summary->eval[0].accuracy > 0.6);  // chance is 0.5
  CHECK(summary->tokens_per_s > 0);
  CHECK(summary->peak_memory_bytes > 0);
  CHECK(summary->peak_reserved_bytes >= summary->peak_memory_bytes);
  CHECK(summary->provenance.at("device") == "cpu");
  CHECK(summary->provenance.at("seed") == 3);

  const auto stored = read_summary(scratch.path());
  REQUIRE(stored);
  CHECK(stored->eval[1].accuracy == summary->eval[1].accuracy);
  CHECK(read_text(scratch.path() / "config.yaml") == run.canonical_yaml);
  CHECK_FALSE(fs::exists(scratch.path() / "checkpoint.pt"));  // the summary marks it done
  CHECK(progress.str().find("step 60/60") != std::string::npos);
}

TEST_CASE("a run whose loss stops being finite is marked diverged at that step", "[trainer]") {
  TempDir scratch;
  RunConfig run = tiny_run("parity", 40);
  run.train.lr = 1e30;  // the first update throws the weights to ~1e30
  run.train.warmup_steps = 0;
  run.train.grad_clip = 0;
  run = resolved(run);
  const auto summary = train_run(run, scratch.path());
  REQUIRE(summary);
  CHECK(summary->status == "diverged");
  REQUIRE(summary->diverged_at_step);
  CHECK(*summary->diverged_at_step >= 2);  // step 1 scores the initial model: finite
  CHECK(*summary->diverged_at_step < 40);
  CHECK(summary->steps == *summary->diverged_at_step);
  CHECK(summary->eval.empty());
  for (const auto& line : read_metrics(scratch.path()))
    CHECK(line.at("step").get<int64_t>() < *summary->diverged_at_step);
  const auto stored = read_summary(scratch.path());
  REQUIRE(stored);
  CHECK(stored->status == "diverged");
  CHECK(stored->diverged_at_step == summary->diverged_at_step);
}

TEST_CASE("a run stops early once the log window's training accuracy reaches the target",
          "[trainer]") {
  TempDir scratch;
  RunConfig run = tiny_run("parity", 100);
  run.train.target_accuracy = 0.3;  // below chance: the first window reaches it
  run = resolved(run);
  const auto summary = train_run(run, scratch.path());
  REQUIRE(summary);
  CHECK(summary->status == "finished");
  CHECK(summary->stopped_early);
  CHECK(summary->steps == run.train.log_every);
  REQUIRE(summary->eval.size() == 2);  // the final evaluation still runs
  const auto eval = lines_of_kind(scratch.path(), "eval");
  REQUIRE(eval.size() == 2);
  CHECK(eval[0].at("step") == run.train.log_every);
}

TEST_CASE("with target_patience_steps a run stops once the target has held that many steps",
          "[trainer]") {
  TempDir scratch;
  RunConfig run = tiny_run("parity", 100);
  run.train.target_accuracy = 0.3;  // below chance: every window reaches it, from step 5 on
  run.train.target_patience_steps = 20;
  run = resolved(run);
  const auto summary = train_run(run, scratch.path());
  REQUIRE(summary);
  CHECK(summary->stopped_early);
  CHECK(summary->steps == run.train.log_every + 20);
}

TEST_CASE("no window with steps of the length curriculum stops a run early", "[trainer]") {
  TempDir scratch;
  RunConfig run = tiny_run("parity", 100);
  run.train.target_accuracy = 0.3;  // below chance: every window reaches it
  run.train.curriculum_steps = 12;  // windows end at 5, 10, 15: the one of steps 16..20 is first
  run.train.curriculum_start_length = 1;
  run = resolved(run);
  REQUIRE(run.train.log_every == 5);
  const auto summary = train_run(run, scratch.path());
  REQUIRE(summary);
  CHECK(summary->stopped_early);
  CHECK(summary->steps == 20);
}

TEST_CASE("a run's peak memory on the CPU is its own, not the process's before it", "[trainer]") {
  // Touch 512 MiB and give it back, as an earlier, larger run of this process would have.
  constexpr size_t kBig = size_t{512} << 20;
  {
    std::vector<char> big(kBig);
    for (size_t i = 0; i < kBig; i += 4096) big[i] = 1;
    volatile char sink = big[kBig - 4096];
    (void)sink;
  }
  TempDir scratch;
  const auto summary = train_run(resolved(tiny_run("parity", 20)), scratch.path());
  REQUIRE(summary);
  CHECK(summary->peak_memory_bytes > 0);
  // Where the kernel refuses the reset (before Linux 4.0) this cannot hold.
  CHECK(summary->peak_memory_bytes < static_cast<int64_t>(kBig));
}

TEST_CASE("the learning rate warms up linearly, then decays by a cosine to lr * min_lr_ratio",
          "[trainer]") {
  TrainSpec train;
  train.lr = 1e-3;
  train.min_lr_ratio = 0.1;
  train.warmup_steps = 10;
  train.steps = 110;
  CHECK_THAT(learning_rate(train, 1), WithinRel(1e-4, 1e-9));
  CHECK_THAT(learning_rate(train, 5), WithinRel(5e-4, 1e-9));
  CHECK_THAT(learning_rate(train, 10), WithinRel(1e-3, 1e-9));
  // Half way through the decay: the mean of lr and its minimum.
  CHECK_THAT(learning_rate(train, 60), WithinRel(0.55e-3, 1e-9));
  CHECK_THAT(learning_rate(train, 110), WithinRel(1e-4, 1e-9));
  train.warmup_steps = 0;
  CHECK_THAT(learning_rate(train, 1), WithinRel(1e-3, 1e-3));  // decay has begun
}

TEST_CASE("scores count scored positions only, and a sequence is right when all of them are",
          "[trainer]") {
  tasks::Batch batch;
  batch.rows = 2;
  batch.cols = 3;
  batch.inputs = {0, 0, 0, 0, 0, 0};
  batch.targets = {1, 0, 1, 1, 1, 0};
  batch.scored = {1, 0, 1, 1, 1, 1};
  const DeviceBatch on_cpu = to_device(batch, torch::kCPU);
  CHECK(on_cpu.scored_count == 5);
  CHECK(on_cpu.tokens == 6);
  // Predictions: row 0 = 1 1 1 (its wrong middle is not scored), row 1 = 1 0 1 (two wrong).
  const auto predicted = torch::tensor({1, 1, 1, 1, 0, 1}, torch::kInt64).reshape({2, 3});
  const auto logits = torch::one_hot(predicted, 2).to(torch::kFloat32) * 10.0;
  const Scores scores = score(logits, on_cpu);
  CHECK(scores.correct.item<int64_t>() == 3);
  CHECK(scores.sequences_correct.item<int64_t>() == 1);
  // Right answers cost ~e^-10 each, wrong ones ~10 each: two wrong scored positions.
  CHECK_THAT(scores.loss_sum.item<double>(), WithinRel(20.0, 1e-3));
}

TEST_CASE("unknown devices and precisions the CPU cannot do are refused by name", "[trainer]") {
  TrainSpec train;
  train.device = "cpu";
  train.precision = "bf16";
  std::string message = error_of([&] { setup_compute(train); });
  CAPTURE(message);
  CHECK(message.find("train.precision bf16 needs a CUDA device") != std::string::npos);
  train.precision = "fp16";
  message = error_of([&] { setup_compute(train); });
  CHECK(message.find("fp32, tf32, bf16") != std::string::npos);
  train.precision = "fp32";
  train.device = "tpu";
  message = error_of([&] { setup_compute(train); });
  CHECK(message.find("auto, cpu, cuda") != std::string::npos);
}
