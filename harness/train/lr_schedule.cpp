#include "harness/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace m2b {

double learning_rate(const TrainSpec& train, int64_t step) {
  if (step <= train.warmup_steps)
    return train.lr * static_cast<double>(step) / static_cast<double>(train.warmup_steps);
  const double min_lr = train.lr * train.min_lr_ratio;
  const int64_t decay_steps = std::max<int64_t>(1, train.steps - train.warmup_steps);
  const double progress = std::min(
      1.0, static_cast<double>(step - train.warmup_steps) / static_cast<double>(decay_steps));
  return min_lr + (train.lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace m2b
