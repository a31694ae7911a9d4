#include <string>

#include "tests/catch.h"
#include "tests/tasks/task_testing.h"
#include "tasks/registry.h"
#include "tasks/render.h"
#include "tasks/split.h"

using namespace m2b::tasks;
using namespace m2b::tasks::testing;

TEST_CASE("length splits validate their bounds", "[split]") {
  CHECK_NOTHROW(LengthSplit{2, 64, {64, 128, 256, 512}}.validate());
  CHECK(message_of<TaskError>([] {
          LengthSplit{8, 4, {16}}.validate();
        }) == "length split: train_min (8) must not exceed train_max (4)");
  CHECK(message_of<TaskError>([] {
          LengthSplit{0, 4, {16}}.validate();
        }) == "length split: train_min must be at least 1, got 0");
  CHECK(message_of<TaskError>([] {
          LengthSplit{1, 4, {}}.validate();
        }) == "length split: eval_lengths is empty; give at least one evaluation length");
  CHECK(message_of<TaskError>([] {
          LengthSplit{1, 4, {8, 0}}.validate();
        }) == "length split: eval_lengths must be at least 1, got 8, 0");
  CHECK(message_of<TaskError>([] {
          LengthSplit{1, 4, {8, 16, 8}}.validate();
        }) == "length split: eval_lengths has duplicates: 8, 16, 8");
}

TEST_CASE("training lengths cover the training range uniformly", "[split]") {
  const LengthSplit split{2, 5, {16}};
  Rng rng(3);
  std::vector<int> counts(6, 0);
  for (int i = 0; i < 4000; ++i) {
    const int64_t length = split.sample_train_length(rng);
    REQUIRE(length >= 2);
    REQUIRE(length <= 5);
    ++counts[length];
  }
  for (int length = 2; length <= 5; ++length) CHECK(std::abs(counts[length] - 1000) < 150);
}

TEST_CASE("the evaluation set depends on the eval seed alone", "[split]") {
  auto task = make_task("s3", {});
  const auto a = evaluation_set(*task, 64, 20, 1234);
  // Training draws from another generator in between must not change it.
  Rng training(1234);
  make_batch(*task, 64, 8, training);
  const auto b = evaluation_set(*task, 64, 20, 1234);
  const auto longer = evaluation_set(*task, 64, 30, 1234);
  const auto other = evaluation_set(*task, 64, 20, 1235);
  REQUIRE(a.size() == 20);
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(fnv1a(a[i]) == fnv1a(b[i]));
    CHECK(fnv1a(a[i]) == fnv1a(longer[i]));
    CHECK(fnv1a(a[i]) != fnv1a(other[i]));
    CHECK(fnv1a(a[i]) != fnv1a(task->sample(64, training)));
  }
  CHECK(fnv1a(a[0]) != fnv1a(a[1]));
  // Each length has its own stream: the 64-long examples do not start with the 32-long ones.
  const auto shorter = evaluation_set(*task, 32, 1, 1234);
  CHECK(std::vector<Token>(a[0].inputs.begin(), a[0].inputs.begin() + 32) != shorter[0].inputs);
  CHECK(message_of<TaskError>([&] { evaluation_set(*task, 8, -1, 0); }) ==
        "s3: evaluation count must be >= 0, got -1");
}

TEST_CASE("batches stack examples row-major", "[split]") {
  auto task = make_task("code_execution", {});
  Rng rng(7), replay(7);
  const Batch batch = make_batch(*task, 10, 3, rng);
  CHECK(batch.rows == 3);
  CHECK(batch.cols == task->token_count(10));
  REQUIRE(batch.inputs.size() == static_cast<size_t>(3 * batch.cols));
  for (int64_t r = 0; r < 3; ++r) {
    const Example ex = task->sample(10, replay);
    for (int64_t c = 0; c < batch.cols; ++c) {
      REQUIRE(batch.inputs[r * batch.cols + c] == ex.inputs[c]);
      REQUIRE(batch.targets[r * batch.cols + c] == ex.targets[c]);
      REQUIRE(batch.scored[r * batch.cols + c] == ex.scored[c]);
    }
  }
  Rng more(8);
  CHECK(message_of<TaskError>([&] {
          stack({task->sample(2, more), task->sample(3, more)});
        }) == "stack: example 1 has 21 tokens, example 0 has 14");
  CHECK(message_of<TaskError>([&] { make_batch(*task, 4, 0, more); }) ==
        "code_execution: batch rows must be >= 1, got 0");
}

TEST_CASE("rendered examples align inputs with bracketed scored targets", "[split]") {
  auto s3 = make_task("s3", {});
  CHECK(render_text(*s3, example_from_text(*s3, "102 021", "102 201")) ==
        "input : 102   021\ntarget: [102] [201]\n");
  auto code = make_task("code_execution", {});
  CHECK(render_text(*code, example_from_text(*code, "a = 3 - - print a", ". . . . . . 3")) ==
        "input : a = 3 - - print a\ntarget: . . . . . .     [3]\n");
}
