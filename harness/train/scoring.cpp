#include "harness/train/scoring.h"

#include <numeric>

namespace m2b {

static torch::Tensor host_tensor(const void* data, int64_t rows, int64_t cols, torch::Dtype dtype) {
  return torch::from_blob(const_cast<void*>(data), {rows, cols}, dtype);
}

DeviceBatch to_device(const tasks::Batch& batch, const torch::Device& device) {
  static_assert(sizeof(tasks::Token) == 4, "tasks::Token is read as int32");
  DeviceBatch out;
  out.rows = batch.rows;
  out.tokens = batch.rows * batch.cols;
  out.scored_count = std::accumulate(batch.scored.begin(), batch.scored.end(), int64_t{0});
  // from_blob borrows the host vectors; .to() copies before they can go away.
  out.inputs = host_tensor(batch.inputs.data(), batch.rows, batch.cols, torch::kInt32)
                   .to(device, torch::kInt64);
  out.targets = host_tensor(batch.targets.data(), batch.rows, batch.cols, torch::kInt32)
                    .to(device, torch::kInt64);
  out.scored = host_tensor(batch.scored.data(), batch.rows, batch.cols, torch::kUInt8)
                   .to(device, torch::kBool);
  return out;
}

Scores score(const torch::Tensor& logits, const DeviceBatch& batch) {
  const int64_t vocab = logits.size(-1);
  const auto per_token = torch::nn::functional::cross_entropy(
      logits.reshape({-1, vocab}).to(torch::kFloat32), batch.targets.reshape(-1),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  const auto mask = batch.scored.reshape(-1);
  Scores out;
  // where(), not masked_select: its output size would make the host wait for the device.
  out.loss_sum = torch::where(mask, per_token, torch::zeros_like(per_token)).sum();
  const auto right = logits.argmax(-1).eq(batch.targets);
  out.correct = right.logical_and(batch.scored).sum();
  out.sequences_correct = right.logical_or(batch.scored.logical_not()).all(-1).sum();
  return out;
}

}  // namespace m2b
