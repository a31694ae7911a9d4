#pragma once
// One optimiser step of a run: forward in the run's precision, cross-entropy on the scored
// positions, backward, the global gradient-norm clip and AdamW. The trainer and bench_train_step
// both run this class, so the benchmark times what `m2bench run` does.
//
// On the CPU the step is LibTorch's own AdamW. On CUDA it keeps the host out of the loop:
//   - ATen's fused AdamW updates the optimiser's state tensors in place, with the step count and
//     learning rate on the device;
//   - loss, accuracy and the first non-finite step are summed on the device, read only by
//     take_totals() (at log, evaluation and checkpoint steps);
//   - with graphs on, each batch shape is run once eagerly (a warm-up that is also a real step),
//     then captured into a CUDA graph that every later step of that shape replays: the step is
//     one graph launch and one copy of the batch, not hundreds of kernel launches. All graphs of
//     a run share one memory pool; their intermediates do not outlive a replay. A mixer whose
//     kernels cannot be captured turns graphs off for the run, with the reason in graphs_off().
#include <torch/torch.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "harness/config/run_config.h"
#include "harness/train/batch_stream.h"
#include "harness/train/compute.h"
#include "harness/train/scoring.h"
#include "models/lm.h"

namespace m2b {

// What the steps since the last take_totals() summed.
struct StepTotals {
  double loss_sum = 0, correct = 0, sequences_correct = 0;
  std::optional<int64_t> first_nonfinite_step;  // the first step whose loss was NaN or inf
};

class TrainStep {
 public:
  // `optimizer` holds the state (a restored checkpoint's included) and outlives this object;
  // `steps_taken` is the number of optimiser steps the run already took.
  TrainStep(models::LanguageModel model, torch::optim::AdamW& optimizer, const TrainSpec& train,
            const Compute& compute, int64_t steps_taken, bool graphs);
  ~TrainStep();

  // Enqueues one step on `batch` at learning rate `lr`; does not wait for the device.
  void run(const HostBatch& batch, double lr);
  // Waits for the device and returns the sums since the last call.
  StepTotals take_totals();
  // Writes the device's step count into the optimiser's state, so that a checkpoint saves it.
  void prepare_checkpoint();

  bool graphs_on() const { return graphs_; }
  const std::string& graphs_off() const { return graphs_off_; }
  // The column count a batch of `cols` tokens is padded to: with graphs on, training lengths
  // fall into at most kMaxShapes buckets between the split's token counts, so a run captures
  // few graphs; else `cols` itself.
  static constexpr int64_t kMaxShapes = 16;
  static int64_t bucket_columns(int64_t cols, int64_t min_cols, int64_t max_cols);

 private:
  struct Captured;     // one batch shape's device batch and graph
  struct StreamScope;  // a side stream, current while this object lives: graphs cannot be
                       // captured on the legacy default stream

  void body(const DeviceBatch& batch);
  void update();
  void capture(Captured& slot);

  std::unique_ptr<StreamScope> stream_;  // first: it outlives everything enqueued below
  models::LanguageModel model_;
  torch::optim::AdamW& optimizer_;
  const TrainSpec& train_;
  Compute compute_;
  bool fused_;  // ATen's fused AdamW on the optimiser's state (CUDA)
  bool graphs_;
  std::string graphs_off_;
  std::vector<torch::Tensor> parameters_;
  struct Group {
    std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;
    double beta1, beta2, eps, weight_decay;
  };
  std::vector<Group> groups_;
  torch::Tensor step_;       // optimiser steps taken (float32, as the fused kernel reads it)
  torch::Tensor lr_;         // float32, on the device
  torch::Tensor sums_;       // float64 [loss_sum, correct, sequences_correct]
  torch::Tensor first_bad_;  // float64 step of the first non-finite loss, 0 for none
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<Captured>> shapes_;
  std::pair<uint64_t, uint64_t> pool_{0, 0};
};

// AdamW with the run's hyperparameters: weight decay on the model's decayed parameters only.
torch::optim::AdamW make_adamw(const models::LanguageModel& model, const TrainSpec& train);

// The device batch of a packed host batch's (3, rows, cols) tensor already on the device.
DeviceBatch unpack_batch(const torch::Tensor& packed);

}  // namespace m2b
