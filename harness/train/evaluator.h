#pragma once
// Evaluation on the fixed evaluation sets: every length of task.eval_lengths, the same examples
// for every model and seed (tasks::evaluation_set with task.eval_seed), batched, without grad.
#include <torch/torch.h>

#include <vector>

#include "harness/results/results.h"
#include "harness/train/compute.h"
#include "harness/train/scoring.h"
#include "models/lm.h"
#include "tasks/task.h"

namespace m2b {

// The prefix-accuracy curve (EvalResult::prefix_accuracy), in two parts so that it adds up over
// batches. leading_right: per example (row of right and scored, (B, S) bool), how many of its
// scored predictions are right before the first wrong one; `all` (at least any row's scored
// count) for an example with none wrong, so that it counts at every t.
torch::Tensor leading_right(const torch::Tensor& right, const torch::Tensor& scored, int64_t all);
// curve[t - 1] for t = 1..most_scored: the fraction of the examples whose leading count is >= t.
std::vector<double> prefix_curve(const torch::Tensor& leading, int64_t most_scored);

// Rows per evaluation batch at `length`: the training batch's `batch_rows`, fewer where the length
// is longer than the training lengths, so that no evaluation batch holds more tokens than a
// training batch. Evaluating at 8x the training length in training-sized batches took 8x the
// activations, and processes sharing one GPU ran out of memory at evaluation. Examples do not
// interact, so the batching changes no result.
int64_t evaluation_batch_rows(int64_t batch_rows, int64_t train_max_length, int64_t length);

class Evaluator {
 public:
  // Builds the evaluation sets once, in batches of evaluation_batch_rows(batch_rows, ...) rows,
  // on the compute device.
  Evaluator(const tasks::Task& task, const TaskSpec& spec, int64_t batch_rows,
            const Compute& compute);
  // One result per evaluation length, ascending, with its prefix-accuracy curve. Leaves the
  // model in training mode.
  std::vector<EvalResult> evaluate(models::LanguageModel& model) const;

 private:
  struct LengthSet {
    int64_t length;
    std::vector<DeviceBatch> batches;
    int64_t most_scored;  // the most scored positions of one example: the prefix curve's length
  };
  std::vector<LengthSet> sets_;
  Compute compute_;
};

}  // namespace m2b
