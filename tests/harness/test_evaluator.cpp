// The prefix-accuracy curve: per example the run of right scored predictions before the first
// wrong one (unscored positions neither break nor count), and for each t the fraction of
// examples whose run reaches t; a trained run's curves never rise with t and end at its
// sequence accuracy.
#include "harness/train/evaluator.h"
#include "harness/train/trainer.h"
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
