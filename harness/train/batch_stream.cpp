#include "harness/train/batch_stream.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "tasks/rng.h"

namespace m2b {

// Separates the training-data streams from any other use of the run seed.
constexpr uint64_t kTrainDataStream = 0x7472'6169'6e00'0001ULL;

tasks::LengthSplit LengthCurriculum::at_step(const tasks::LengthSplit& split, int64_t step) const {
  if (steps <= 0) return split;
  const int64_t start = start_length > 0 ? start_length : split.train_min;
  const int64_t done = std::clamp<int64_t>(step, 0, steps);
  const int64_t longest = start + (split.train_max - start) * done / steps;
  tasks::LengthSplit out = split;
  out.train_max = longest;
  out.train_min = std::min(split.train_min, longest);
  return out;
}

int64_t LengthCurriculum::shortest(const tasks::LengthSplit& split) const {
  if (steps <= 0 || start_length <= 0) return split.train_min;
  return std::min(split.train_min, start_length);
}

tasks::Batch training_batch(const tasks::Task& task, const tasks::LengthSplit& split,
                            int64_t batch_size, uint64_t seed, int64_t step,
                            const LengthCurriculum& curriculum) {
  tasks::Rng rng(tasks::derive_seed(seed, kTrainDataStream, static_cast<uint64_t>(step)));
  const int64_t length = curriculum.at_step(split, step).sample_train_length(rng);
  return tasks::make_batch(task, length, batch_size, rng);
}

HostBatch pack_batch(const tasks::Batch& batch, int64_t cols, bool pinned) {
  if (cols < batch.cols)
    throw std::invalid_argument("pack_batch: cannot pad a batch to fewer columns than it has");
  HostBatch out;
  out.rows = batch.rows;
  out.tokens = batch.rows * batch.cols;
  out.scored_count = std::accumulate(batch.scored.begin(), batch.scored.end(), int64_t{0});
  out.packed = torch::zeros({3, batch.rows, cols},
                            torch::TensorOptions().dtype(torch::kInt64).pinned_memory(pinned));
  auto rows = out.packed.accessor<int64_t, 3>();
  for (int64_t r = 0; r < batch.rows; ++r)
    for (int64_t c = 0; c < batch.cols; ++c) {
      const size_t i = static_cast<size_t>(r * batch.cols + c);
      rows[0][r][c] = batch.inputs[i];
      rows[1][r][c] = batch.targets[i];
      rows[2][r][c] = batch.scored[i];
    }
  return out;
}

BatchStream::BatchStream(const tasks::Task& task, const tasks::LengthSplit& split,
                         int64_t batch_size, uint64_t seed, int64_t first_step, int64_t last_step,
                         std::function<int64_t(int64_t)> pad_to, bool pinned,
                         LengthCurriculum curriculum)
    : task_(task), split_(split), batch_size_(batch_size), seed_(seed), first_step_(first_step),
      next_step_(first_step), last_step_(last_step), pad_to_(std::move(pad_to)), pinned_(pinned),
      curriculum_(curriculum) {
  producer_ = std::thread([this] { produce(); });
}

BatchStream::~BatchStream() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  producer_.join();
}

void BatchStream::produce() {
  try {
    for (int64_t step = first_step_; step <= last_step_; ++step) {
      const tasks::Batch batch =
          training_batch(task_, split_, batch_size_, seed_, step, curriculum_);
      HostBatch packed = pack_batch(batch, pad_to_(batch.cols), pinned_);
      packed.step = step;
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || ready_.size() < kDepth; });
      if (stopping_) return;
      ready_.push_back(std::move(packed));
      changed_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
    changed_.notify_all();
  }
}

HostBatch BatchStream::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !ready_.empty() || error_ || next_step_ > last_step_; });
  if (ready_.empty() && error_) std::rethrow_exception(error_);
  if (ready_.empty()) throw std::logic_error("BatchStream: asked past its last step");
  HostBatch batch = std::move(ready_.front());
  ready_.pop_front();
  changed_.notify_all();
  if (batch.step != next_step_) throw std::logic_error("BatchStream: batches out of order");
  ++next_step_;
  return batch;
}

}  // namespace m2b
