// The prefix-accuracy curve: per example the run of right scored predictions before the first
// wrong one (unscored positions neither break nor count), and for each t the fraction of
// examples whose run reaches t; a trained run's curves never rise with t and end at its
// sequence accuracy. Evaluation batches are capped at a training batch's tokens, which changes no
// result.
#include "harness/train/evaluator.h"
#include "harness/train/trainer.h"
#include "models/lm.h"
#include "tasks/registry.h"
#include "tests/catch.h"
#include "tests/harness/suite_fixtures.h"
#include "tests/harness/tiny_run.h"

using namespace m2b;

namespace {

torch::Tensor bools(std::vector<std::vector<int>> rows) {
  std::vector<torch::Tensor> out;
  for (const auto& r : rows)
    out.push_back(torch::tensor(std::vector<int64_t>(r.begin(), r.end())).to(torch::kBool));
  return torch::stack(out);
}

}  // namespace

TEST_CASE("leading_right counts the right scored predictions before the first wrong one",
          "[evaluator][prefix_accuracy]") {
  const auto right = bools({{1, 1, 0, 1}, {0, 1, 1, 1}, {1, 1, 1, 1}, {1, 0, 1, 0}});
  const auto scored = bools({{1, 1, 1, 1}, {1, 1, 1, 1}, {1, 1, 1, 1}, {1, 0, 1, 0}});
  // Row 4: its wrong predictions sit at unscored positions, so none of its scored ones is wrong.
  const auto leading = leading_right(right, scored, 4);
  CHECK(leading.equal(torch::tensor(std::vector<int64_t>{2, 0, 4, 4})));
  const auto unscored_first = leading_right(bools({{0, 1, 0}}), bools({{0, 1, 1}}), 2);
  CHECK(unscored_first.item<int64_t>() == 1);
}

TEST_CASE("prefix_curve gives for each t the fraction of examples whose run reaches t",
          "[evaluator][prefix_accuracy]") {
  const auto curve = prefix_curve(torch::tensor(std::vector<int64_t>{2, 0, 4, 4}), 4);
  CHECK(curve == std::vector<double>{0.75, 0.75, 0.5, 0.5});
  CHECK(prefix_curve(torch::tensor(std::vector<int64_t>{3}), 3) == std::vector<double>{1, 1, 1});
}

TEST_CASE("an evaluated run's prefix curves fall from t = 1 to its sequence accuracy",
          "[evaluator][prefix_accuracy]") {
  test::TempDir dir;
  const RunConfig run = test::resolved(test::tiny_run("parity", 30));
  const auto summary = train_run(run, dir.path(), {});
  REQUIRE(summary);
  REQUIRE(summary->eval.size() == 2);
  for (const EvalResult& e : summary->eval) {
    CAPTURE(e.length);
    REQUIRE(e.prefix_accuracy.size() == static_cast<size_t>(e.length));
    for (size_t t = 1; t < e.prefix_accuracy.size(); ++t)
      CHECK(e.prefix_accuracy[t] <= e.prefix_accuracy[t - 1]);
    // Every position of parity is scored: the whole sequence is t = length.
    CHECK(e.prefix_accuracy.back() == e.sequence_accuracy);
  }
}

TEST_CASE("evaluation batches past the training lengths hold no more tokens than a training batch",
          "[evaluator]") {
  CHECK(evaluation_batch_rows(256, 128, 64) == 256);  // shorter: the training batch's rows
  CHECK(evaluation_batch_rows(256, 128, 128) == 256);
  CHECK(evaluation_batch_rows(256, 128, 512) == 64);
  CHECK(evaluation_batch_rows(256, 128, 1000) == 32);  // 32 x 1000 <= 256 x 128 < 33 x 1000
  CHECK(evaluation_batch_rows(4, 8, 1000) == 1);       // never fewer than one row
}

TEST_CASE("how the evaluation sets are batched changes no result", "[evaluator]") {
  RunConfig run = test::tiny_run("s3");
  run.task.eval_lengths = {8, 40};  // 40: past the training lengths, so batched more finely
  torch::manual_seed(5);
  models::LanguageModel model(run.model);
  const auto task = tasks::make_task(run.task.name, run.task.params);
  const Compute cpu;
  // 16 rows at length 8 and 3 at 40, against one row per batch.
  const auto batched = Evaluator(*task, run.task, run.train.batch_size, cpu).evaluate(model);
  const auto one_by_one = Evaluator(*task, run.task, 1, cpu).evaluate(model);
  REQUIRE(batched.size() == 2);
  REQUIRE(one_by_one.size() == 2);
  for (size_t i = 0; i < batched.size(); ++i) {
    CAPTURE(batched[i].length);
    CHECK(batched[i].accuracy == one_by_one[i].accuracy);
    CHECK(batched[i].sequence_accuracy == one_by_one[i].sequence_accuracy);
    CHECK(batched[i].prefix_accuracy == one_by_one[i].prefix_accuracy);
    CHECK_THAT(batched[i].loss, Catch::Matchers::WithinRel(one_by_one[i].loss, 1e-6));
  }
}
