#include "harness/evaluator.h"

#include <algorithm>

#include "tasks/split.h"

namespace m2b {

Evaluator::Evaluator(const tasks::Task& task, const TaskSpec& spec, int64_t batch_rows,
                     const Compute& compute)
    : compute_(compute) {
  std::vector<int64_t> lengths = spec.eval_lengths;
  std::sort(lengths.begin(), lengths.end());
  for (int64_t length : lengths) {
    const auto examples = tasks::evaluation_set(task, length, spec.eval_examples, spec.eval_seed);
    LengthSet set{length, {}};
    for (size_t start = 0; start < examples.size(); start += static_cast<size_t>(batch_rows)) {
      const size_t end = std::min(examples.size(), start + static_cast<size_t>(batch_rows));
      const std::vector<tasks::Example> chunk(examples.begin() + start, examples.begin() + end);
      set.batches.push_back(to_device(tasks::stack(chunk), compute_.device));
    }
    sets_.push_back(std::move(set));
  }
}

std::vector<EvalResult> Evaluator::evaluate(models::LanguageModel& model) const {
  torch::NoGradGuard no_grad;
  model->eval();
  std::vector<EvalResult> results;
  for (const LengthSet& set : sets_) {
    auto loss_sum = torch::zeros({}, torch::TensorOptions(compute_.device).dtype(torch::kFloat64));
    auto correct = torch::zeros_like(loss_sum), sequences_correct = torch::zeros_like(loss_sum);
    int64_t scored = 0, rows = 0;
    for (const DeviceBatch& batch : set.batches) {
      Scores scores;
      {
        AutocastGuard autocast(compute_);
        scores = score(model->forward(batch.inputs), batch);
      }
      loss_sum += scores.loss_sum;
      correct += scores.correct;
      sequences_correct += scores.sequences_correct;
      scored += batch.scored_count;
      rows += batch.rows;
    }
    EvalResult r;
    r.length = set.length;
    r.loss = loss_sum.item<double>() / static_cast<double>(std::max<int64_t>(1, scored));
    r.accuracy = correct.item<double>() / static_cast<double>(std::max<int64_t>(1, scored));
    r.sequence_accuracy =
        sequences_correct.item<double>() / static_cast<double>(std::max<int64_t>(1, rows));
    results.push_back(r);
  }
  model->train();
  return results;
}

}  // namespace m2b
