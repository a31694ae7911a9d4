#pragma once
// What the trainer accumulates between two training log lines. The logged loss and accuracy are
// the window's means, and early stopping looks at the window, so one lucky batch ends nothing.
#include <cstdint>

namespace m2b {

struct TrainWindow {
  int64_t steps = 0;
  int64_t tokens = 0;  // every input token, scored or not
  int64_t scored = 0, correct = 0;
  int64_t sequences = 0, sequences_correct = 0;
  double loss_sum = 0;  // cross-entropy summed over scored tokens
  double seconds = 0;   // training time spent in the window (for tokens/s)

  double loss() const { return scored ? loss_sum / static_cast<double>(scored) : 0.0; }
  double accuracy() const {
    return scored ? static_cast<double>(correct) / static_cast<double>(scored) : 0.0;
  }
  double sequence_accuracy() const {
    return sequences ? static_cast<double>(sequences_correct) / static_cast<double>(sequences)
                     : 0.0;
  }
  double tokens_per_s() const { return seconds > 0 ? static_cast<double>(tokens) / seconds : 0.0; }
};

}  // namespace m2b
