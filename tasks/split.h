#pragma once
// Length-extrapolation splits and batching: train on lengths train_min..train_max, evaluate on a
// fixed set of examples at each evaluation length.
#include <cstdint>
#include <vector>

#include "tasks/task.h"

namespace m2b::tasks {

struct LengthSplit {
  int64_t train_min = 1, train_max = 16;
  std::vector<int64_t> eval_lengths;  // e.g. train 2..64, evaluate at 64, 128, 256, 512
  // Throws TaskError unless 1 <= train_min <= train_max and the evaluation lengths are
  // non-empty, positive and distinct.
  void validate() const;
  // A training length drawn uniformly from [train_min, train_max].
  int64_t sample_train_length(Rng& rng) const;
};

// `count` examples of `length`, fixed by eval_seed alone (example i comes from its own stream,
// derive_seed(eval_seed, length, i)): every model, run and training seed sees the same ones,
// and a larger count extends a smaller one.
std::vector<Example> evaluation_set(const Task& task, int64_t length, int64_t count,
                                    uint64_t eval_seed);
// Example `index` of that set alone.
Example evaluation_example(const Task& task, int64_t length, int64_t index, uint64_t eval_seed);

// Examples of one length stacked row-major: element (r, c) is at r * cols + c.
struct Batch {
  int64_t rows = 0, cols = 0;
  std::vector<Token> inputs, targets;
  std::vector<uint8_t> scored;
};

Batch make_batch(const Task& task, int64_t length, int64_t rows, Rng& rng);
// Throws TaskError if the examples differ in token count.
Batch stack(const std::vector<Example>& examples);

}  // namespace m2b::tasks
