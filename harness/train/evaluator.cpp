#include "harness/train/evaluator.h"

#include <algorithm>

#include "tasks/split.h"

namespace m2b {

torch::Tensor leading_right(const torch::Tensor& right, const torch::Tensor& scored, int64_t all) {
  const auto ok = right.logical_or(scored.logical_not());
  const auto unbroken = ok.to(torch::kInt64).cumprod(-1).to(torch::kBool);
  const auto count = unbroken.logical_and(scored).sum(-1);
  return torch::where(ok.all(-1), torch::full_like(count, all), count);
}

std::vector<double> prefix_curve(const torch::Tensor& leading, int64_t most_scored) {
  const int64_t rows = leading.numel();
  // reaching[t]: the examples whose unbroken run of right predictions reaches t.
  const auto histogram =
      torch::bincount(leading.reshape(-1).clamp(0, most_scored), {}, most_scored + 1);
  const auto reaching = histogram.flip(0).cumsum(0).flip(0).cpu();
  const auto reach = reaching.accessor<int64_t, 1>();
  std::vector<double> curve;
  for (int64_t t = 1; t <= most_scored; ++t)
    curve.push_back(static_cast<double>(reach[t]) /
                    static_cast<double>(std::max<int64_t>(1, rows)));
  return curve;
}

int64_t evaluation_batch_rows(int64_t batch_rows, int64_t train_max_length, int64_t length) {
  return std::clamp<int64_t>(batch_rows * train_max_length / std::max<int64_t>(1, length), 1,
                             batch_rows);
}

Evaluator::Evaluator(const tasks::Task& task, const TaskSpec& spec, int64_t batch_rows,
                     const Compute& compute)
    : compute_(compute) {
  std::vector<int64_t> lengths = spec.eval_lengths;
  std::sort(lengths.begin(), lengths.end());
  for (int64_t length : lengths) {
    const auto examples = tasks::evaluation_set(task, length, spec.eval_examples, spec.eval_seed);
    LengthSet set{length, {}, 0};
    for (const auto& example : examples)
      set.most_scored = std::max<int64_t>(
          set.most_scored, std::count(example.scored.begin(), example.scored.end(), uint8_t{1}));
    const auto rows =
        static_cast<size_t>(evaluation_batch_rows(batch_rows, spec.train_max_length, length));
    for (size_t start = 0; start < examples.size(); start += rows) {
      const size_t end = std::min(examples.size(), start + rows);
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
    std::vector<torch::Tensor> leading;  // per batch, per example
    for (const DeviceBatch& batch : set.batches) {
      Scores scores;
      {
        AutocastGuard autocast(compute_);
        const auto logits = model->forward(batch.inputs);
        scores = score(logits, batch);
        leading.push_back(
            leading_right(logits.argmax(-1).eq(batch.targets), batch.scored, set.most_scored));
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
    r.prefix_accuracy = prefix_curve(torch::cat(leading), set.most_scored);
    results.push_back(r);
  }
  model->train();
  return results;
}

}  // namespace m2b
