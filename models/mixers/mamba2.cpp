// Mamba-2 (Dao & Gu, 2024): a selective state-space layer with one scalar decay per head,
// computed by the SSD op (models/ops/ssd.h), chunked for a sequence and stepped for one token.
// One group: B and C are shared by all heads, as in the paper's default configuration.
#include <fmt/format.h>

#include <vector>

#include "models/layers.h"
#include "models/mixer.h"
#include "models/mixers/decay_gate_options.h"
#include "models/ops/ssd.h"

namespace m2b::models {
namespace {

// The widths that the options and d_model make.
struct Mamba2Sizes {
  int64_t inner, head_dim, heads, state;
  Mamba2Sizes(int64_t d_model, const Options& o)
      : inner(o.get_int("expand") * d_model), head_dim(o.get_int("head_dim")),
        heads(inner / head_dim), state(o.get_int("d_state")) {}
};

class Mamba2Impl : public MixerImpl {
 public:
  Mamba2Impl(int64_t d_model, const Options& o) : Mamba2Impl(d_model, Mamba2Sizes(d_model, o), o) {}

  Mamba2Impl(int64_t d_model, const Mamba2Sizes& s, const Options& o)
      : d_inner_(s.inner), head_dim_(s.head_dim), heads_(s.heads), d_state_(s.state),
        chunk_(o.get_int("chunk_size")) {
    // [z | x B C | dt_raw]: the gate, the conv's input and the decay gate's input.
    in_proj_ = register_module(
        "in_proj",
        torch::nn::Linear(
            torch::nn::LinearOptions(d_model, 2 * d_inner_ + 2 * d_state_ + heads_).bias(false)));
    conv_ = register_module("conv", CausalConv(d_inner_ + 2 * d_state_, o.get_int("conv_kernel")));
    decay_ = register_module(
        "decay", DecayGate(heads_, o.get_float("a_init_min"), o.get_float("a_init_max")));
    D_ = register_parameter("D", torch::ones({heads_}));
    norm_ = register_module("norm", RMSNorm(d_inner_, 1e-5));
    out_proj_ = register_module(
        "out_proj", torch::nn::Linear(torch::nn::LinearOptions(d_inner_, d_model).bias(false)));
  }

  // State: {conv history (B, conv_kernel-1, d_inner + 2 d_state),
  //         SSM state (B, heads, d_state, head_dim)}.
  torch::Tensor forward(const torch::Tensor& x, MixerState* state) override {
    const bool continues = state && !state->empty();
    auto in = project(x);
    torch::Tensor history = continues ? state->tensors[0] : torch::Tensor();
    auto ssm = ssm_inputs(conv_->forward(in.xBC, state ? &history : nullptr), in.dt_raw);
    auto out = ops::ssd_chunked(ssm.x_dt, ssm.log_decay, ssm.B, ssm.C, chunk_,
                                continues ? state->tensors[1] : torch::Tensor());
    if (state) state->tensors = {history, out.final_state};
    return output(out.y, ssm.x, in.z);
  }

  torch::Tensor step(const torch::Tensor& x, MixerState& state) override {
    auto in = project(x);
    torch::Tensor history = state.empty() ? torch::Tensor() : state.tensors[0];
    auto ssm = ssm_inputs(conv_->step(in.xBC, history), in.dt_raw);
    auto out = ops::ssd_step(ssm.x_dt, ssm.log_decay, ssm.B, ssm.C,
                             state.empty() ? torch::Tensor() : state.tensors[1]);
    state.tensors = {history, out.final_state};
    return output(out.y, ssm.x, in.z);
  }

 private:
  // Each piece keeps the leading (B, S) of a sequence or (B) of a token.
  struct Projected {
    torch::Tensor z, xBC, dt_raw;
  };
  struct SsmInputs {
    torch::Tensor x, x_dt, log_decay, B, C;  // x (.., heads, head_dim); B, C (.., 1, d_state)
  };

  Projected project(const torch::Tensor& x) {
    auto p = in_proj_->forward(x);
    return {p.narrow(-1, 0, d_inner_), p.narrow(-1, d_inner_, d_inner_ + 2 * d_state_),
            p.narrow(-1, 2 * d_inner_ + 2 * d_state_, heads_)};
  }

  SsmInputs ssm_inputs(const torch::Tensor& xBC, const torch::Tensor& dt_raw) {
    auto xs = xBC.narrow(-1, 0, d_inner_).unflatten(-1, {heads_, head_dim_});
    auto decay = decay_->forward(dt_raw);
    return {xs, xs * decay.dt.unsqueeze(-1), decay.log_decay,
            xBC.narrow(-1, d_inner_, d_state_).unsqueeze(-2),
            xBC.narrow(-1, d_inner_ + d_state_, d_state_).unsqueeze(-2)};
  }

  // The D skip, the gated norm RMSNorm(y * silu(z)) and the output projection.
  torch::Tensor output(const torch::Tensor& y, const torch::Tensor& xs, const torch::Tensor& z) {
    auto skipped = (y + D_.unsqueeze(-1) * xs).flatten(-2);
    return out_proj_->forward(norm_->forward(skipped * torch::silu(z)));
  }

  int64_t d_inner_, head_dim_, heads_, d_state_, chunk_;
  torch::nn::Linear in_proj_{nullptr}, out_proj_{nullptr};
  CausalConv conv_{nullptr};
  DecayGate decay_{nullptr};
  RMSNorm norm_{nullptr};
  torch::Tensor D_;
};

// in_proj, the conv's weights and bias, the decay gate's A_log and dt_bias, D, the norm and
// out_proj, as Mamba2Impl builds them.
int64_t mamba2_parameters(int64_t d_model, const Options& o) {
  const Mamba2Sizes s(d_model, o);
  return d_model * (2 * s.inner + 2 * s.state + s.heads) +
         (s.inner + 2 * s.state) * (o.get_int("conv_kernel") + 1) + 3 * s.heads + s.inner +
         s.inner * d_model;
}

void check_mamba2(int64_t d_model, const Options& o) {
  const int64_t expand = o.get_int("expand"), head_dim = o.get_int("head_dim");
  if ((expand * d_model) % head_dim != 0)
    throw OptionError("head_dim",
                      fmt::format("mixer mamba2: head_dim ({}) must divide expand * d_model = "
                                  "{} * {} = {}",
                                  head_dim, expand, d_model, expand * d_model));
  check_decay_gate_options("mamba2", o);
}

std::vector<OptionSpec> mamba2_options() {
  std::vector<OptionSpec> spec = {
      {"d_state", OptionType::Int, int64_t{32}, "state size N per head (B and C width)", 1, 1024},
      {"expand", OptionType::Int, int64_t{2}, "inner width = expand * d_model", 1, 16},
      {"head_dim", OptionType::Int, int64_t{16},
       "channels per head P; must divide expand * d_model (heads = expand * d_model / head_dim)", 1,
       4096},
      {"conv_kernel", OptionType::Int, int64_t{4}, "causal conv width over x, B and C", 1, 64},
      {"chunk_size", OptionType::Int, int64_t{32},
       "SSD chunk length of the parallel form (speed only: results do not depend on it)", 1, 4096}};
  for (auto& gate : decay_gate_options(1.0, 16.0)) spec.push_back(std::move(gate));
  return spec;
}

}  // namespace

M2B_REGISTER_MIXER(mamba2,
                   MixerInfo{
                       "mamba2",
                       "Mamba-2: gated selective state space with a scalar decay per head (SSD, "
                       "chunked for sequences), B and C shared by the heads",
                       mamba2_options(),
                       [](int64_t d_model, const Options& o) -> std::shared_ptr<MixerImpl> {
                         return std::make_shared<Mamba2Impl>(d_model, o);
                       },
                       mamba2_parameters, check_mamba2});

}  // namespace m2b::models
