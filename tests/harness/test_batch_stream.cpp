// Training batches under a length curriculum: the longest length grows linearly from its start
// to train_max over the curriculum's steps, no batch is longer than its step allows, and after
// the curriculum (or without one) every step draws exactly the batch an uncurriculated run does.
#include "harness/train/batch_stream.h"
#include "tasks/registry.h"
#include "tests/catch.h"

using namespace m2b;

namespace {

tasks::LengthSplit split(int64_t lo, int64_t hi) { return {lo, hi, {hi}}; }

}  // namespace

TEST_CASE("a length curriculum grows the longest training length linearly to train_max",
          "[batch_stream][curriculum]") {
  const LengthCurriculum from_min{100, 0};
  CHECK(from_min.at_step(split(2, 16), 1).train_max == 2);  // 2 + 14 * 1 / 100, rounded down
  CHECK(from_min.at_step(split(2, 16), 50).train_max == 9);
  CHECK(from_min.at_step(split(2, 16), 100).train_max == 16);
  CHECK(from_min.at_step(split(2, 16), 5000).train_max == 16);
  CHECK(from_min.at_step(split(2, 16), 50).train_min == 2);
  // A fixed training length (min = max) grows from the start length instead, one length a step.
  const LengthCurriculum from_16{112, 16};
  for (int64_t step : {1, 56, 112}) {
    CAPTURE(step);
    const auto at = from_16.at_step(split(128, 128), step);
    CHECK(at.train_max == 16 + 112 * step / 112);
    CHECK(at.train_min == at.train_max);
  }
  CHECK(from_16.shortest(split(128, 128)) == 16);
  CHECK(from_min.shortest(split(2, 16)) == 2);
  CHECK(LengthCurriculum{}.at_step(split(2, 16), 1).train_max == 16);
}

TEST_CASE("no batch under a curriculum is longer than its step's longest length",
          "[batch_stream][curriculum]") {
  const auto task = tasks::make_task("s3", {});
  const LengthCurriculum curriculum{40, 0};
  int64_t longest_seen = 0;
  for (int64_t step = 1; step <= 40; ++step) {
    const auto batch = training_batch(*task, split(1, 41), 4, /*seed=*/3, step, curriculum);
    CAPTURE(step);
    CHECK(batch.cols <= 1 + step);
    longest_seen = std::max(longest_seen, batch.cols);
  }
  CHECK(longest_seen > 20);  // it does grow
}

TEST_CASE("without a curriculum, and once one is over, a step draws the uncurriculated batch",
          "[batch_stream][curriculum]") {
  const auto task = tasks::make_task("s3", {});
  const LengthCurriculum curriculum{10, 0};
  for (int64_t step : {10, 11, 200}) {
    CAPTURE(step);
    const auto plain = training_batch(*task, split(2, 16), 8, 5, step);
    const auto off = training_batch(*task, split(2, 16), 8, 5, step, LengthCurriculum{});
    const auto after = training_batch(*task, split(2, 16), 8, 5, step, curriculum);
    CHECK(off.inputs == plain.inputs);
    CHECK(after.cols == plain.cols);
    CHECK(after.inputs == plain.inputs);
    CHECK(after.targets == plain.targets);
  }
}
