// Gated DeltaNet (Yang, Kautz & Hatamizadeh, 2025): the delta rule with a scalar decay gate per
// head, computed by the gated delta rule op (models/ops/delta_rule.h), chunked for a sequence and
// stepped for one token. Layout as in flash-linear-attention's layer: causal conv + SiLU on q, k
// and v; q and k L2-normalised per head, q scaled by head_k_dim^-1/2; output RMSNorm per head
// times silu(g). With negative_eigenvalues, b = 2 sigmoid(.) lets I - b k k^T reflect (eigenvalue
// down to -1), which Grazzi et al. (2025) show unlocks state tracking.
#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "models/layers.h"
#include "models/mixer.h"
#include "models/mixers/delta_head_sizes.h"
#include "models/mixers/decay_gate_options.h"
#include "models/ops/delta_rule.h"

namespace m2b::models {
namespace {

class GatedDeltaNetImpl : public MixerImpl {
 public:
  GatedDeltaNetImpl(int64_t d_model, const Options& o)
      : sizes_(head_sizes(d_model, o)), key_width_(sizes_.heads * sizes_.k_dim),
        value_width_(sizes_.heads * sizes_.v_dim), chunk_(o.get_int("chunk_size")),
        beta_scale_(o.get_bool("negative_eigenvalues") ? 2.0 : 1.0) {
    // [q k v (conv) | g (output gate) | beta_raw | decay_raw]
    const int64_t conv_width = 2 * key_width_ + value_width_;
    in_proj_ = register_module(
        "in_proj", torch::nn::Linear(torch::nn::LinearOptions(
                                         d_model, conv_width + value_width_ + 2 * sizes_.heads)
                                         .bias(false)));
    conv_ = register_module("conv", CausalConv(conv_width, o.get_int("conv_kernel")));
    decay_ = register_module(
        "decay", DecayGate(sizes_.heads, o.get_float("a_init_min"), o.get_float("a_init_max")));
    norm_ = register_module("norm", RMSNorm(sizes_.v_dim, 1e-5));
    out_proj_ = register_module(
        "out_proj", torch::nn::Linear(torch::nn::LinearOptions(value_width_, d_model).bias(false)));
  }

  // State: {conv history (B, conv_kernel-1, 2 heads head_k_dim + heads head_v_dim),
  //         delta-rule state (B, heads, head_k_dim, head_v_dim)}.
  torch::Tensor forward(const torch::Tensor& x, MixerState* state) override {
    const bool continues = state && !state->empty();
    auto p = in_proj_->forward(x);
    torch::Tensor history = continues ? state->tensors[0] : torch::Tensor();
    auto in = rule_inputs(conv_->forward(conv_input(p), state ? &history : nullptr), p);
    auto out = ops::delta_rule_chunked(in.q, in.k, in.v, in.log_a, in.beta, chunk_,
                                       continues ? state->tensors[1] : torch::Tensor());
    if (state) state->tensors = {history, out.final_state};
    return output(out.o, p);
  }

  torch::Tensor step(const torch::Tensor& x, MixerState& state) override {
    auto p = in_proj_->forward(x);
    torch::Tensor history = state.empty() ? torch::Tensor() : state.tensors[0];
    auto in = rule_inputs(conv_->step(conv_input(p), history), p);
    auto out = ops::delta_rule_step(in.q, in.k, in.v, in.log_a, in.beta,
                                    state.empty() ? torch::Tensor() : state.tensors[1]);
    state.tensors = {history, out.final_state};
    return output(out.o, p);
  }

 private:
  // Each piece keeps the leading (B, S) of a sequence or (B) of a token.
  struct RuleInputs {
    torch::Tensor q, k, v, log_a, beta;
  };

  torch::Tensor conv_input(const torch::Tensor& p) const {
    return p.narrow(-1, 0, 2 * key_width_ + value_width_);
  }

  // p: the input projection; qkv: its conv part after the conv.
  RuleInputs rule_inputs(const torch::Tensor& qkv, const torch::Tensor& p) {
    auto heads = [&](int64_t start, int64_t width, int64_t dim) {
      return qkv.narrow(-1, start, width).unflatten(-1, {sizes_.heads, dim});
    };
    auto unit = [](const torch::Tensor& t) {
      return t * torch::rsqrt(t.pow(2).sum(-1, /*keepdim=*/true) + 1e-6);
    };
    const int64_t raw = 2 * key_width_ + 2 * value_width_;
    auto beta = beta_scale_ * torch::sigmoid(p.narrow(-1, raw, sizes_.heads));
    auto log_a = decay_->forward(p.narrow(-1, raw + sizes_.heads, sizes_.heads)).log_decay;
    return {unit(heads(0, key_width_, sizes_.k_dim)) / std::sqrt(double(sizes_.k_dim)),
            unit(heads(key_width_, key_width_, sizes_.k_dim)),
            heads(2 * key_width_, value_width_, sizes_.v_dim), log_a, beta};
  }

  // RMSNorm per head times silu(g), then the output projection.
  torch::Tensor output(const torch::Tensor& o, const torch::Tensor& p) {
    auto g = p.narrow(-1, 2 * key_width_ + value_width_, value_width_);
    return out_proj_->forward(norm_->forward(o).flatten(-2) * torch::silu(g));
  }

  HeadSizes sizes_;
  int64_t key_width_, value_width_, chunk_;
  double beta_scale_;
  torch::nn::Linear in_proj_{nullptr}, out_proj_{nullptr};
  CausalConv conv_{nullptr};
  DecayGate decay_{nullptr};
  RMSNorm norm_{nullptr};
};

// in_proj, the conv's weights and bias, the decay gate's A_log and dt_bias, the norm and
// out_proj, as GatedDeltaNetImpl builds them.
int64_t gated_deltanet_parameters(int64_t d_model, const Options& o) {
  const HeadSizes s = head_sizes(d_model, o);
  const int64_t keys = s.heads * s.k_dim, values = s.heads * s.v_dim;
  const int64_t conv_width = 2 * keys + values;
  return d_model * (conv_width + values + 2 * s.heads) +
         conv_width * (o.get_int("conv_kernel") + 1) + 2 * s.heads + s.v_dim + values * d_model;
}

void check_gated_deltanet(int64_t d_model, const Options& o) {
  const int64_t heads = o.get_int("num_heads");
  if (o.get_int("head_k_dim") == 0 && d_model % heads != 0)
    throw OptionError("num_heads",
                      fmt::format("mixer gated_deltanet: with head_k_dim 0 (= d_model / "
                                  "num_heads), num_heads ({}) must divide d_model ({}); set "
                                  "head_k_dim to use other head counts",
                                  heads, d_model));
  check_decay_gate_options("gated_deltanet", o);
}

std::vector<OptionSpec> gated_deltanet_options() {
  std::vector<OptionSpec> spec = {
      {"num_heads", OptionType::Int, int64_t{4}, "heads, each with its own state and gates", 1,
       1024},
      {"head_k_dim", OptionType::Int, int64_t{0},
       "query/key width per head; 0 means d_model / num_heads", 0, 4096},
      {"head_v_dim", OptionType::Int, int64_t{0},
       "value width per head; 0 means 2 * head_k_dim (expand_v = 2)", 0, 4096},
      {"conv_kernel", OptionType::Int, int64_t{4}, "causal conv width over q, k and v", 1, 64},
      {"chunk_size", OptionType::Int, int64_t{32},
       "chunk length of the parallel form (speed only: results do not depend on it)", 1, 4096},
      {"negative_eigenvalues", OptionType::Bool, false,
       "b = 2 sigmoid(.) in (0, 2) instead of sigmoid(.): the state transition may reflect, which "
       "helps state tracking"}};
  for (auto& gate : decay_gate_options(0.0, 16.0)) spec.push_back(std::move(gate));
  return spec;
}

}  // namespace

M2B_REGISTER_MIXER(
    gated_deltanet,
    MixerInfo{"gated_deltanet",
              "Gated DeltaNet: gated delta rule with L2-normalised q/k, a decay gate per head and "
              "an output gate (chunked WY form for sequences)",
              gated_deltanet_options(),
              [](int64_t d_model, const Options& o) -> std::shared_ptr<MixerImpl> {
                return std::make_shared<GatedDeltaNetImpl>(d_model, o);
              },
              gated_deltanet_parameters, check_gated_deltanet});

}  // namespace m2b::models
