#include "harness/train/train_step.h"

#include <fmt/format.h>

#include <algorithm>

#include "harness/train/error_text.h"

#ifdef M2BENCH_HAVE_CUDA
#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace m2b {

struct TrainStep::Captured {
  torch::Tensor packed;  // the device copy of the batch, read by the graph
  bool warmed_up = false;
#ifdef M2BENCH_HAVE_CUDA
  std::unique_ptr<at::cuda::CUDAGraph> graph;
#endif
};

struct TrainStep::StreamScope {
#ifdef M2BENCH_HAVE_CUDA
  explicit StreamScope(const torch::Device& device)
      : guard(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index())) {}
  c10::cuda::CUDAStreamGuard guard;
#else
  explicit StreamScope(const torch::Device&) {}
#endif
};

torch::optim::AdamW make_adamw(const models::LanguageModel& model, const TrainSpec& train) {
  auto options = [&](double weight_decay) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(train.lr)
                                                            .betas({train.beta1, train.beta2})
                                                            .eps(train.eps)
                                                            .weight_decay(weight_decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto decayed = model->decayed_parameters(), undecayed = model->undecayed_parameters();
  if (!decayed.empty()) groups.emplace_back(decayed, options(train.weight_decay));
  if (!undecayed.empty()) groups.emplace_back(undecayed, options(0.0));
  return torch::optim::AdamW(groups, torch::optim::AdamWOptions(train.lr));
}

DeviceBatch unpack_batch(const torch::Tensor& packed) {
  DeviceBatch batch;
  batch.inputs = packed[0];
  batch.targets = packed[1];
  batch.scored = packed[2].to(torch::kBool);
  batch.rows = packed.size(1);
  batch.tokens = packed.size(1) * packed.size(2);
  return batch;
}

int64_t TrainStep::bucket_columns(int64_t cols, int64_t min_cols, int64_t max_cols) {
  const int64_t width = (max_cols - min_cols + kMaxShapes) / kMaxShapes;  // ceil(span / shapes)
  return std::min(max_cols, min_cols + (cols - min_cols + width - 1) / width * width);
}

// torch::nn::utils::clip_grad_norm_ returns the norm as a double, which makes the host wait for
// the device every step; this keeps the whole clip on the device.
static void clip_grad_norm(const std::vector<torch::Tensor>& parameters, double max_norm) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : parameters)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return;
  const auto total = torch::stack(at::_foreach_norm(grads, 2)).norm();
  at::_foreach_mul_(grads, (max_norm / (total + 1e-6)).clamp_max(1.0));
}

TrainStep::TrainStep(models::LanguageModel model, torch::optim::AdamW& optimizer,
                     const TrainSpec& train, const Compute& compute, int64_t steps_taken,
                     bool graphs)
    : stream_(compute.device.is_cuda() ? std::make_unique<StreamScope>(compute.device) : nullptr),
      model_(std::move(model)), optimizer_(optimizer), train_(train), compute_(compute),
      fused_(compute.device.is_cuda()), graphs_(graphs && fused_) {
  parameters_ = model_->parameters();
  const auto on_device = torch::TensorOptions().device(compute_.device);
  step_ = torch::full({}, static_cast<double>(steps_taken), on_device.dtype(torch::kFloat32));
  lr_ = torch::zeros({}, on_device.dtype(torch::kFloat32));
  sums_ = torch::zeros({3}, on_device.dtype(torch::kFloat64));
  first_bad_ = torch::zeros({}, on_device.dtype(torch::kFloat64));
  if (!fused_) return;
  // The fused kernel updates LibTorch's AdamW state tensors in place, so a checkpoint saves
  // them as the eager optimiser would; gradients are allocated once and zeroed in place, so
  // every graph reads and writes the same buffers.
  for (auto& group : optimizer_.param_groups()) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    TORCH_CHECK(!o.amsgrad(), "TrainStep: fused AdamW here does not do amsgrad");
    Group g{{},
            {},
            {},
            {},
            {},
            std::get<0>(o.betas()),
            std::get<1>(o.betas()),
            o.eps(),
            o.weight_decay()};
    for (auto& p : group.params()) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      auto& slot = optimizer_.state()[p.unsafeGetTensorImpl()];
      if (!slot) {
        auto state = std::make_unique<torch::optim::AdamWParamState>();
        state->exp_avg(torch::zeros_like(p));
        state->exp_avg_sq(torch::zeros_like(p));
        slot = std::move(state);
      }
      auto& state = static_cast<torch::optim::AdamWParamState&>(*slot);
      g.params.push_back(p);
      g.grads.push_back(p.grad());
      g.exp_avgs.push_back(state.exp_avg());
      g.exp_avg_sqs.push_back(state.exp_avg_sq());
      g.steps.push_back(step_);  // read only: the step count is one tensor for all
    }
    groups_.push_back(std::move(g));
  }
#ifdef M2BENCH_HAVE_CUDA
  if (graphs_) pool_ = at::cuda::graph_pool_handle();
#endif
}

TrainStep::~TrainStep() = default;

void TrainStep::update() {
  step_.add_(1);
  if (!fused_) {
    optimizer_.step();
    return;
  }
  for (auto& g : groups_)
    at::_fused_adamw_(g.params, g.grads, g.exp_avgs, g.exp_avg_sqs, /*max_exp_avg_sqs=*/{}, g.steps,
                      lr_, g.beta1, g.beta2, g.weight_decay, g.eps, /*amsgrad=*/false,
                      /*maximize=*/false);
}

void TrainStep::body(const DeviceBatch& batch) {
  if (fused_)
    for (auto& g : groups_) at::_foreach_zero_(g.grads);
  else optimizer_.zero_grad();
  Scores scores;
  {
    AutocastGuard autocast(compute_);
    scores = score(model_->forward(batch.inputs), batch);
  }
  (scores.loss_sum / batch.scored.sum()).backward();
  if (train_.grad_clip > 0) clip_grad_norm(parameters_, train_.grad_clip);
  update();
  const auto loss = scores.loss_sum.detach().to(torch::kFloat64);
  sums_.add_(torch::stack(
      {loss, scores.correct.to(torch::kFloat64), scores.sequences_correct.to(torch::kFloat64)}));
  // In place, so that a graph keeps writing the tensor take_totals() reads.
  first_bad_.copy_(torch::where(first_bad_.eq(0).logical_and(loss.isfinite().logical_not()),
                                step_.to(torch::kFloat64), first_bad_));
}

void TrainStep::capture(Captured& slot) {
#ifdef M2BENCH_HAVE_CUDA
  auto graph = std::make_unique<at::cuda::CUDAGraph>();
  // Cached autocast casts made outside the capture would be baked into the graph as constants.
  const bool cache = at::autocast::is_autocast_cache_enabled();
  at::autocast::set_autocast_cache_enabled(false);
  try {
    // Thread-local: the batch producer may allocate pinned memory meanwhile.
    graph->capture_begin(pool_, cudaStreamCaptureModeThreadLocal);
    try {
      body(unpack_batch(slot.packed));
    } catch (...) {
      try {
        graph->capture_end();
      } catch (...) {}
      throw;
    }
    graph->capture_end();
    slot.graph = std::move(graph);
  } catch (const std::exception& e) {
    (void)cudaGetLastError();  // an invalidated capture leaves its error behind
    graphs_ = false;
    graphs_off_ = fmt::format("the step could not be captured in a CUDA graph ({})",
                              error_text(e).substr(0, 200));
  }
  at::autocast::set_autocast_cache_enabled(cache);
#else
  (void)slot;
#endif
}

void TrainStep::run(const HostBatch& batch, double lr) {
  if (fused_) lr_.fill_(lr);
  else
    for (auto& group : optimizer_.param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  if (!graphs_) {
    body(unpack_batch(batch.packed.to(compute_.device, /*non_blocking=*/true)));
    return;
  }
  auto& slot = shapes_[{batch.packed.size(1), batch.packed.size(2)}];
  if (!slot) {
    slot = std::make_unique<Captured>();
    slot->packed = torch::empty(
        batch.packed.sizes(), batch.packed.options().device(compute_.device).pinned_memory(false));
  }
  slot->packed.copy_(batch.packed, /*non_blocking=*/true);
#ifdef M2BENCH_HAVE_CUDA
  if (slot->graph) {
    slot->graph->replay();
    return;
  }
  if (slot->warmed_up) {
    capture(*slot);
    if (slot->graph) {
      slot->graph->replay();
      return;
    }
  }
#endif
  // The first step of a shape runs eagerly: it sets up what a capture must not (cuBLAS
  // workspaces, kernel plans, the autograd engine's threads).
  slot->warmed_up = true;
  body(unpack_batch(slot->packed));
}

StepTotals TrainStep::take_totals() {
  const auto host = torch::cat({sums_, first_bad_.view({1})}).cpu();
  sums_.zero_();
  first_bad_.zero_();
  const auto v = host.accessor<double, 1>();
  StepTotals t{v[0], v[1], v[2], std::nullopt};
  if (v[3] > 0) t.first_nonfinite_step = static_cast<int64_t>(v[3]);
  return t;
}

void TrainStep::prepare_checkpoint() {
  if (!fused_) return;
  const auto steps = static_cast<int64_t>(step_.item<float>());
  for (auto& p : parameters_) {
    auto it = optimizer_.state().find(p.unsafeGetTensorImpl());
    if (it != optimizer_.state().end())
      static_cast<torch::optim::AdamWParamState&>(*it->second).step(steps);
  }
}

}  // namespace m2b
