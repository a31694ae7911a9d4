// M2RNN (the layer of docs/m2rnn-layer.md, after lm-engine's sequence mixer): a non-linear
// RNN whose state per head is a K x V matrix,
//   H_t = f_t H_{t-1} + (1 - f_t) tanh(H_{t-1} W + k_t v_t^T),  y_t = q_t^T H_t,
// behind one input projection, a causal conv with SiLU on q, k, v and a softplus decay gate for
// f; then y + D v, an output gate silu(g), RMSNorm and the output projection.
// One option beyond the authors' layer, input_scale s (default 1, their layer): the recurrence
// takes s k, so its input s k v^T. The SiLU'd k and v of a freshly initialised small model are
// O(0.3), which leaves tanh in its linear range, where the layer behaves like a linear RNN and
// learns state tracking slowly; experiments/paper/ says what it measured.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "models/layers.h"
#include "models/ops/m2rnn_op.h"
#include "models/mixer.h"
#include "models/mixers/decay_gate_options.h"

namespace m2b::models {
namespace {

struct M2rnnSizes {
  int64_t K, V, Nq, Nk, Nv, Nw, Nf, Ng;
  explicit M2rnnSizes(const Options& o)
      : K(o.get_int("k_dim")), V(o.get_int("v_dim")), Nq(o.get_int("num_q_heads")),
        Nk(o.get_int("num_k_heads")), Nv(o.get_int("num_v_heads")), Nw(o.get_int("num_w_heads")),
        Nf(o.get_int("num_f_heads")), Ng(o.get_int("num_g_heads")) {}
  // The recurrence's head count; g only follows it.
  int64_t N() const { return std::max({Nq, Nk, Nv, Nw, Nf}); }
  int64_t qkv_width() const { return (Nq + Nk) * K + Nv * V; }
  int64_t in_width() const { return qkv_width() + Nf + Ng * V; }  // [q | k | v | f_raw | g]
};

// in_proj, the conv's weights and bias, the decay gate's A_log and dt_bias, W, D, the norm and
// out_proj, as M2rnnImpl builds them.
int64_t m2rnn_parameters(int64_t d_model, const Options& o) {
  const M2rnnSizes n(o);
  const int64_t out = n.N() * n.V;
  return d_model * n.in_width() + n.qkv_width() * (o.get_int("conv_kernel") + 1) + 2 * n.Nf +
         n.Nw * n.V * n.V + 2 * out + out * d_model;
}

// x (..., heads, V) -> (..., N, V): head n reads head n / (N / heads).
torch::Tensor repeat_heads(const torch::Tensor& x, int64_t N) {
  const int64_t heads = x.size(-2);
  return heads == N ? x : x.repeat_interleave(N / heads, -2);
}

class M2rnnImpl : public MixerImpl {
 public:
  M2rnnImpl(int64_t d_model, const Options& o)
      : n_(o), grad_clip_(o.get_float("grad_clip")), input_scale_(o.get_float("input_scale")),
        backend_(parse_m2rnn_backend(o.get_string("backend"))),
        state_checkpoint_every_(o.get_int("state_checkpoint_every")) {
    const int64_t N = n_.N();
    in_proj_ = register_module(
        "in_proj", torch::nn::Linear(torch::nn::LinearOptions(d_model, n_.in_width()).bias(false)));
    conv_ = register_module("conv", CausalConv(n_.qkv_width(), o.get_int("conv_kernel")));
    decay_ = register_module(
        "decay", DecayGate(n_.Nf, o.get_float("a_init_min"), o.get_float("a_init_max")));
    W_ = register_parameter("W", torch::eye(n_.V).repeat({n_.Nw, 1, 1}));
    D_ = register_parameter("D", torch::ones({N, n_.V}));
    norm_ = register_module("norm", RMSNorm(N * n_.V));
    out_proj_ = register_module(
        "out_proj", torch::nn::Linear(torch::nn::LinearOptions(N * n_.V, d_model).bias(false)));
  }

  // State: {conv history (B, conv_kernel-1, qkv width), H (B, N, K, V)}.
  torch::Tensor forward(const torch::Tensor& x, MixerState* state) override {
    const bool continues = state && !state->empty();
    const int64_t N = n_.N(), K = n_.K, V = n_.V;
    auto p = in_proj_->forward(x);  // [q | k | v | f_raw | g]
    torch::Tensor history = continues ? state->tensors[0] : torch::Tensor();
    auto qkv = conv_->forward(p.narrow(-1, 0, n_.qkv_width()), state ? &history : nullptr);
    auto q = qkv.narrow(-1, 0, n_.Nq * K).unflatten(-1, {n_.Nq, K});
    auto k = qkv.narrow(-1, n_.Nq * K, n_.Nk * K).unflatten(-1, {n_.Nk, K});
    if (input_scale_ != 1.0) k = k * input_scale_;
    auto v = qkv.narrow(-1, (n_.Nq + n_.Nk) * K, n_.Nv * V).unflatten(-1, {n_.Nv, V});
    auto f = torch::exp(decay_->forward(p.narrow(-1, n_.qkv_width(), n_.Nf)).log_decay);
    auto g = p.narrow(-1, n_.qkv_width() + n_.Nf, n_.Ng * V).unflatten(-1, {n_.Ng, V});

    // Under bf16 autocast the projections come out in bf16 while W and the gate stay float32;
    // the recurrence takes one element type, that of its inputs.
    const auto dtype = q.scalar_type();
    auto [y, h_final] = m2rnn_recurrence(q, k, v, W_.to(dtype), f.to(dtype),
                                         continues ? state->tensors[1] : torch::Tensor(),
                                         grad_clip_, backend_, state_checkpoint_every_);
    if (state) state->tensors = {history, h_final};
    auto out = (y + D_ * repeat_heads(v, N)) * torch::silu(repeat_heads(g, N));
    return out_proj_->forward(norm_->forward(out.flatten(-2)));
  }

  // One token is a sequence of one: the same conv and recurrence, so step and forward agree.
  torch::Tensor step(const torch::Tensor& x, MixerState& state) override {
    return forward(x.unsqueeze(1), &state).squeeze(1);
  }

 private:
  M2rnnSizes n_;
  double grad_clip_, input_scale_;
  M2rnnBackend backend_;
  int64_t state_checkpoint_every_;
  torch::nn::Linear in_proj_{nullptr}, out_proj_{nullptr};
  CausalConv conv_{nullptr};
  DecayGate decay_{nullptr};
  RMSNorm norm_{nullptr};
  torch::Tensor W_, D_;
};

// The fused CUDA kernels save states on the ends of their tiles of 2, 4 or 8 steps
// (kernels/cuda/m2rnn_fused_launch.cuh), so a multiple of 8 suits every shape and dtype.
constexpr int64_t kLargestFusedTileSteps = 8;

const char* const kHeadOptions[] = {"num_q_heads", "num_k_heads", "num_v_heads",
                                    "num_w_heads", "num_f_heads", "num_g_heads"};

void check_m2rnn(int64_t /*d_model*/, const Options& o) {
  const int64_t N = M2rnnSizes(o).N();
  for (const char* name : kHeadOptions) {
    const int64_t heads = o.get_int(name);
    if (N % heads != 0)
      throw OptionError(name, fmt::format("mixer m2rnn: {} ({}) must divide N = {}, the largest "
                                          "of the q, k, v, w and f head counts",
                                          name, heads, N));
  }
  check_decay_gate_options("m2rnn", o);
  const int64_t every = o.get_int("state_checkpoint_every");
  if (every % kLargestFusedTileSteps != 0)
    throw OptionError("state_checkpoint_every",
                      fmt::format("mixer m2rnn: state_checkpoint_every ({}) must be a positive "
                                  "multiple of {}, the fused CUDA kernels' largest tile of steps",
                                  every, kLargestFusedTileSteps));
}

std::vector<OptionSpec> m2rnn_options() {
  std::vector<OptionSpec> spec = {
      {"k_dim", OptionType::Int, int64_t{16}, "key size K: the state of a head is K x V", 1, 1024},
      {"v_dim", OptionType::Int, int64_t{16}, "value size V (W is V x V per weight head)", 1, 1024},
      {"num_q_heads", OptionType::Int, int64_t{1}, "query heads; must divide N", 1, 1024},
      {"num_k_heads", OptionType::Int, int64_t{1}, "key heads; must divide N", 1, 1024},
      {"num_v_heads", OptionType::Int, int64_t{4}, "value heads; must divide N", 1, 1024},
      {"num_w_heads", OptionType::Int, int64_t{4}, "transition matrices W; must divide N", 1, 1024},
      {"num_f_heads", OptionType::Int, int64_t{4}, "forget gates; must divide N", 1, 1024},
      {"num_g_heads", OptionType::Int, int64_t{4}, "output gate heads; must divide N", 1, 1024},
      {"conv_kernel", OptionType::Int, int64_t{4}, "causal conv width over q, k and v", 1, 64},
      {"grad_clip", OptionType::Float, 1.0,
       "clamp of the gradient reaching each state during backward; 0 disables it", 0.0, 1e9},
      {"input_scale", OptionType::Float, 1.0,
       "multiplier on k, so the recurrence's input is input_scale k v^T; 1 is the authors' layer",
       1e-3, 1e3},
      {"backend", OptionType::String, std::string("auto"),
       "recurrence implementation: auto picks cuda on GPU where the fused kernels take the "
       "shape, cpu for float32/64 on CPU, else reference",
       -INFINITY, INFINITY, m2rnn_backend_names()}};
  for (auto& gate : decay_gate_options(0.0, 16.0)) spec.push_back(std::move(gate));
  // Left out of run ids while it holds its default: the runs recorded before it keep theirs.
  OptionSpec every{"state_checkpoint_every",
                   OptionType::Int,
                   kDefaultStateCheckpointEvery,
                   fmt::format("backend cuda: the forward saves the state every this many "
                               "steps for the backward, which recomputes the steps between; "
                               "fewer keep more states and make the backward faster. A "
                               "positive multiple of {}",
                               kLargestFusedTileSteps),
                   1,
                   1 << 20};
  every.omit_when_default = true;
  spec.push_back(std::move(every));
  return spec;
}

// The fused kernels and cuBLAS compute only on a GPU; the CPU kernel only on the CPU.
std::optional<DeviceTie> m2rnn_device_tie(const Options& o) {
  switch (parse_m2rnn_backend(o.get_string("backend"))) {
    case M2rnnBackend::Cuda:
    case M2rnnBackend::Cublas: return DeviceTie{"backend", "cuda"};
    case M2rnnBackend::Cpu: return DeviceTie{"backend", "cpu"};
    case M2rnnBackend::Auto:
    case M2rnnBackend::Reference: break;
  }
  return std::nullopt;
}

}  // namespace

M2B_REGISTER_MIXER(m2rnn,
                   MixerInfo{
                       "m2rnn",
                       "M2RNN: non-linear RNN with a K x V matrix state per head, "
                       "H = f H + (1 - f) tanh(H W + k v^T), y = q^T H; N heads, the largest of "
                       "the q, k, v, w and f head counts",
                       m2rnn_options(),
                       [](int64_t d_model, const Options& o) -> std::shared_ptr<MixerImpl> {
                         return std::make_shared<M2rnnImpl>(d_model, o);
                       },
                       m2rnn_parameters, check_m2rnn,
                       /*supports_float64=*/true, m2rnn_device_tie});

}  // namespace m2b::models
