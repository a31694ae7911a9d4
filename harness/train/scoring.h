#pragma once
// Loss and accuracy on the scored positions of a batch: the one definition that training and
// evaluation share.
#include <torch/torch.h>

#include "tasks/split.h"

namespace m2b {

// A batch on the compute device: inputs and targets (B, S) int64, scored (B, S) bool.
struct DeviceBatch {
  torch::Tensor inputs, targets, scored;
  int64_t rows = 0, tokens = 0, scored_count = 0;  // counted on the host, no device sync
};
DeviceBatch to_device(const tasks::Batch& batch, const torch::Device& device);

// Device scalars, so that a training step need not wait for the device to read them.
struct Scores {
  torch::Tensor loss_sum;           // cross-entropy summed over scored positions (fp32)
  torch::Tensor correct;            // scored positions predicted right
  torch::Tensor sequences_correct;  // rows with every scored position right
};
// logits: (B, S, V) from the model for batch.inputs.
Scores score(const torch::Tensor& logits, const DeviceBatch& batch);

}  // namespace m2b
