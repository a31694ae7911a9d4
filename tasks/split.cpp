#include "tasks/split.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace m2b::tasks {

void LengthSplit::validate() const {
  if (train_min < 1)
    throw TaskError(fmt::format("length split: train_min must be at least 1, got {}", train_min));
  if (train_max < train_min)
    throw TaskError(fmt::format("length split: train_min ({}) must not exceed train_max ({})",
                                train_min, train_max));
  if (eval_lengths.empty())
    throw TaskError("length split: eval_lengths is empty; give at least one evaluation length");
  std::vector<int64_t> sorted = eval_lengths;
  std::sort(sorted.begin(), sorted.end());
  if (sorted.front() < 1)
    throw TaskError(fmt::format("length split: eval_lengths must be at least 1, got {}",
                                fmt::join(eval_lengths, ", ")));
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
    throw TaskError(fmt::format("length split: eval_lengths has duplicates: {}",
                                fmt::join(eval_lengths, ", ")));
}

int64_t LengthSplit::sample_train_length(Rng& rng) const {
  return train_min + static_cast<int64_t>(rng.below(train_max - train_min + 1));
}

std::vector<Example> evaluation_set(const Task& task, int64_t length, int64_t count,
                                    uint64_t eval_seed) {
  if (count < 0)
    throw TaskError(fmt::format("{}: evaluation count must be >= 0, got {}", task.name(), count));
  std::vector<Example> out;
  out.reserve(count);
  for (int64_t i = 0; i < count; ++i) out.push_back(evaluation_example(task, length, i, eval_seed));
  return out;
}

Example evaluation_example(const Task& task, int64_t length, int64_t index, uint64_t eval_seed) {
  Rng rng(derive_seed(eval_seed, length, index));
  return task.sample(length, rng);
}

Batch make_batch(const Task& task, int64_t length, int64_t rows, Rng& rng) {
  if (rows < 1)
    throw TaskError(fmt::format("{}: batch rows must be >= 1, got {}", task.name(), rows));
  std::vector<Example> examples;
  examples.reserve(rows);
  for (int64_t r = 0; r < rows; ++r) examples.push_back(task.sample(length, rng));
  return stack(examples);
}

Batch stack(const std::vector<Example>& examples) {
  Batch b;
  b.rows = static_cast<int64_t>(examples.size());
  b.cols = examples.empty() ? 0 : static_cast<int64_t>(examples[0].inputs.size());
  b.inputs.reserve(b.rows * b.cols);
  b.targets.reserve(b.rows * b.cols);
  b.scored.reserve(b.rows * b.cols);
  for (size_t r = 0; r < examples.size(); ++r) {
    const Example& ex = examples[r];
    if (static_cast<int64_t>(ex.inputs.size()) != b.cols || ex.targets.size() != ex.inputs.size() ||
        ex.scored.size() != ex.inputs.size())
      throw TaskError(fmt::format("stack: example {} has {} tokens, example 0 has {}", r,
                                  ex.inputs.size(), b.cols));
    b.inputs.insert(b.inputs.end(), ex.inputs.begin(), ex.inputs.end());
    b.targets.insert(b.targets.end(), ex.targets.begin(), ex.targets.end());
    b.scored.insert(b.scored.end(), ex.scored.begin(), ex.scored.end());
  }
  return b;
}

}  // namespace m2b::tasks
