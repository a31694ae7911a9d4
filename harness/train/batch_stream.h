#pragma once
// The training batches of a run, made ahead on a producer thread so that the training loop never
// waits for the task generator. Step s draws its length and examples from its own stream,
// derive_seed(seed, s), exactly as an unbroken run would, so where the producer starts (a resumed
// run) changes nothing. On a CUDA run the batches live in pinned memory, which the device copies
// from without the host waiting.
#include <torch/torch.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "tasks/split.h"
#include "tasks/task.h"

namespace m2b {

// One step's batch: inputs, targets and the scored mask (0/1) stacked as one (3, rows, cols)
// int64 tensor, so that it reaches the device in one copy. Columns past the batch's own token
// count (padding, see BatchStream's pad_to) hold zeros and are not scored.
struct HostBatch {
  int64_t step = 0;
  torch::Tensor packed;
  int64_t rows = 0;
  int64_t tokens = 0;        // rows * the task's token count: padding excluded
  int64_t scored_count = 0;  // scored positions
};

// Packs a task batch, padding its columns with unscored zeros up to `cols` (>= batch.cols).
HostBatch pack_batch(const tasks::Batch& batch, int64_t cols, bool pinned);

// A length curriculum: over steps 1..steps the longest training length grows linearly from
// start_length (0 means the split's train_min) to the split's train_max; each step draws its
// length uniformly from [min(train_min, longest), longest]. steps 0 is off: every step draws from
// the split's whole range, consuming the random stream exactly as before the curriculum existed.
struct LengthCurriculum {
  int64_t steps = 0;
  int64_t start_length = 0;
  // The training lengths of step `step` (1-based).
  tasks::LengthSplit at_step(const tasks::LengthSplit& split, int64_t step) const;
  // The shortest length any step may draw.
  int64_t shortest(const tasks::LengthSplit& split) const;
};

class BatchStream {
 public:
  // Batches of steps first_step..last_step in order. pad_to maps a batch's token count to the
  // column count it is padded to (identity for none).
  BatchStream(const tasks::Task& task, const tasks::LengthSplit& split, int64_t batch_size,
              uint64_t seed, int64_t first_step, int64_t last_step,
              std::function<int64_t(int64_t)> pad_to, bool pinned,
              LengthCurriculum curriculum = {});
  ~BatchStream();
  BatchStream(const BatchStream&) = delete;
  BatchStream& operator=(const BatchStream&) = delete;

  // The next step's batch; rethrows what the producer threw.
  HostBatch next();

 private:
  void produce();

  const tasks::Task& task_;
  tasks::LengthSplit split_;
  int64_t batch_size_;
  uint64_t seed_;
  const int64_t first_step_;  // the producer's
  int64_t next_step_;         // the consumer's, under mutex_
  const int64_t last_step_;
  std::function<int64_t(int64_t)> pad_to_;
  bool pinned_;
  LengthCurriculum curriculum_;

  static constexpr size_t kDepth = 8;  // batches made ahead
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<HostBatch> ready_;
  std::exception_ptr error_;
  bool stopping_ = false;
  std::thread producer_;
};

// Training data of step `step`: its own stream of the run seed, its length from the curriculum.
tasks::Batch training_batch(const tasks::Task& task, const tasks::LengthSplit& split,
                            int64_t batch_size, uint64_t seed, int64_t step,
                            const LengthCurriculum& curriculum = {});

}  // namespace m2b
