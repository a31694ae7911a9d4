#pragma once
// The learning rate of each optimiser step: linear warm-up to train.lr, then a cosine decay to
// train.lr * train.min_lr_ratio at the last step.
#include <cstdint>

#include "harness/config/run_config.h"

namespace m2b {

// `step` counts optimiser steps from 1 (the first update) to train.steps.
double learning_rate(const TrainSpec& train, int64_t step);

}  // namespace m2b
