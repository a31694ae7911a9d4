#pragma once
// Evaluation on the fixed evaluation sets: every length of task.eval_lengths, the same examples
// for every model and seed (tasks::evaluation_set with task.eval_seed), batched, without grad.
#include <torch/torch.h>

#include <vector>

#include "harness/compute.h"
#include "harness/results.h"
#include "harness/scoring.h"
#include "models/lm.h"
#include "tasks/task.h"

namespace m2b {

class Evaluator {
 public:
  // Builds the evaluation sets once, in batches of `batch_rows` rows, on the compute device.
  Evaluator(const tasks::Task& task, const TaskSpec& spec, int64_t batch_rows,
            const Compute& compute);
  // One result per evaluation length, ascending. Leaves the model in training mode.
  std::vector<EvalResult> evaluate(models::LanguageModel& model) const;

 private:
  struct LengthSet {
    int64_t length;
    std::vector<DeviceBatch> batches;
  };
  std::vector<LengthSet> sets_;
  Compute compute_;
};

}  // namespace m2b
