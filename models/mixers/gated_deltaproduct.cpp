// Gated DeltaProduct (Siems et al., 2025): Gated DeltaNet with num_householder delta-rule updates
// per token, so each token's state transition is a product of that many generalised Householder
// matrices, computed by the gated delta product op (models/ops/delta_product.h). Layout as
// gated_deltanet's: causal conv + SiLU on q and on every sub-step's k and v; q and k L2-normalised
// per head, q scaled by head_k_dim^-1/2; one decay gate per head and token (applied before the
// token's first update); output RMSNorm per head times silu(g). With num_householder 1 the
// parameters and the computation are those of gated_deltanet. With negative_eigenvalues,
// b = 2 sigmoid(.) lets each factor reflect; two reflections per token solve S3 in the paper.
#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "models/layers.h"
#include "models/mixer.h"
#include "models/mixers/delta_head_sizes.h"
#include "models/mixers/decay_gate_options.h"
#include "models/ops/delta_product.h"

namespace m2b::models {
namespace {

class GatedDeltaProductImpl : public MixerImpl {
 public:
  GatedDeltaProductImpl(int64_t d_model, const Options& o)
      : GatedDeltaProductImpl(d_model, head_sizes(d_model, o), o) {}

  GatedDeltaProductImpl(int64_t d_model, const HeadSizes& s, const Options& o)
      : heads_(s.heads), k_dim_(s.k_dim), v_dim_(s.v_dim), n_(o.get_int("num_householder")),
        key_width_(heads_ * k_dim_), value_width_(heads_ * v_dim_), chunk_(o.get_int("chunk_size")),
        beta_scale_(o.get_bool("negative_eigenvalues") ? 2.0 : 1.0) {
    // [q | k_1 .. k_n | v_1 .. v_n (conv) | g (output gate) | beta_1 .. beta_n | decay_raw]
    in_proj_ = register_module(
        "in_proj", torch::nn::Linear(torch::nn::LinearOptions(
                                         d_model, conv_width() + value_width_ + (n_ + 1) * heads_)
                                         .bias(false)));
    conv_ = register_module("conv", CausalConv(conv_width(), o.get_int("conv_kernel")));
    decay_ = register_module(
        "decay", DecayGate(heads_, o.get_float("a_init_min"), o.get_float("a_init_max")));
    norm_ = register_module("norm", RMSNorm(v_dim_, 1e-5));
    out_proj_ = register_module(
        "out_proj", torch::nn::Linear(torch::nn::LinearOptions(value_width_, d_model).bias(false)));
  }

  // State: {conv history (B, conv_kernel-1, conv width), delta-rule state (B, heads, K, V)}.
  torch::Tensor forward(const torch::Tensor& x, MixerState* state) override {
    const bool continues = state && !state->empty();
    auto p = in_proj_->forward(x);
    torch::Tensor history = continues ? state->tensors[0] : torch::Tensor();
    auto in = rule_inputs(conv_->forward(conv_input(p), state ? &history : nullptr), p);
    auto out = ops::delta_product_chunked(in.q, in.k, in.v, in.log_a, in.beta, chunk_,
                                          continues ? state->tensors[1] : torch::Tensor());
    if (state) state->tensors = {history, out.final_state};
    return output(out.o, p);
  }

  torch::Tensor step(const torch::Tensor& x, MixerState& state) override {
    auto p = in_proj_->forward(x);
    torch::Tensor history = state.empty() ? torch::Tensor() : state.tensors[0];
    auto in = rule_inputs(conv_->step(conv_input(p), history), p);
    auto out = ops::delta_product_step(in.q, in.k, in.v, in.log_a, in.beta,
                                       state.empty() ? torch::Tensor() : state.tensors[1]);
    state.tensors = {history, out.final_state};
    return output(out.o, p);
  }

 private:
  // Each piece keeps the leading (B, S) of a sequence or (B) of a token; k, v and beta add the
  // sub-step dimension after it.
  struct RuleInputs {
    torch::Tensor q, k, v, log_a, beta;
  };

  int64_t conv_width() const { return (n_ + 1) * key_width_ + n_ * value_width_; }

  torch::Tensor conv_input(const torch::Tensor& p) const { return p.narrow(-1, 0, conv_width()); }

  // p: the input projection; qkv: its conv part after the conv.
  RuleInputs rule_inputs(const torch::Tensor& qkv, const torch::Tensor& p) {
    auto unit = [](const torch::Tensor& t) {
      return t * torch::rsqrt(t.pow(2).sum(-1, /*keepdim=*/true) + 1e-6);
    };
    auto q = qkv.narrow(-1, 0, key_width_).unflatten(-1, {heads_, k_dim_});
    auto k = qkv.narrow(-1, key_width_, n_ * key_width_).unflatten(-1, {n_, heads_, k_dim_});
    auto v = qkv.narrow(-1, (n_ + 1) * key_width_, n_ * value_width_)
                 .unflatten(-1, {n_, heads_, v_dim_});
    const int64_t raw = conv_width() + value_width_;
    auto beta =
        beta_scale_ * torch::sigmoid(p.narrow(-1, raw, n_ * heads_).unflatten(-1, {n_, heads_}));
    auto log_a = decay_->forward(p.narrow(-1, raw + n_ * heads_, heads_)).log_decay;
    return {unit(q) / std::sqrt(double(k_dim_)), unit(k), v, log_a, beta};
  }

  // RMSNorm per head times silu(g), then the output projection.
  torch::Tensor output(const torch::Tensor& o, const torch::Tensor& p) {
    auto g = p.narrow(-1, conv_width(), value_width_);
    return out_proj_->forward(norm_->forward(o).flatten(-2) * torch::silu(g));
  }

  int64_t heads_, k_dim_, v_dim_, n_, key_width_, value_width_, chunk_;
  double beta_scale_;
  torch::nn::Linear in_proj_{nullptr}, out_proj_{nullptr};
  CausalConv conv_{nullptr};
  DecayGate decay_{nullptr};
  RMSNorm norm_{nullptr};
};

// in_proj, the conv's weights and bias, the decay gate's A_log and dt_bias, the norm and
// out_proj, as GatedDeltaProductImpl builds them.
int64_t gated_deltaproduct_parameters(int64_t d_model, const Options& o) {
  const auto [heads, k_dim, v_dim] = head_sizes(d_model, o);
  const int64_t n = o.get_int("num_householder");
  const int64_t conv_width = (n + 1) * heads * k_dim + n * heads * v_dim;
  return d_model * (conv_width + heads * v_dim + (n + 1) * heads) +
         conv_width * (o.get_int("conv_kernel") + 1) + 2 * heads + v_dim + heads * v_dim * d_model;
}

void check_gated_deltaproduct(int64_t d_model, const Options& o) {
  const int64_t heads = o.get_int("num_heads");
  if (o.get_int("head_k_dim") == 0 && d_model % heads != 0)
    throw OptionError("num_heads",
                      fmt::format("mixer gated_deltaproduct: with head_k_dim 0 (= d_model / "
                                  "num_heads), num_heads ({}) must divide d_model ({}); set "
                                  "head_k_dim to use other head counts",
                                  heads, d_model));
  check_decay_gate_options("gated_deltaproduct", o);
}

std::vector<OptionSpec> gated_deltaproduct_options() {
  std::vector<OptionSpec> spec = {
      {"num_householder", OptionType::Int, int64_t{2},
       "delta-rule updates (Householder factors) per token; 1 is gated_deltanet", 1, 16},
      {"num_heads", OptionType::Int, int64_t{4}, "heads, each with its own state and gates", 1,
       1024},
      {"head_k_dim", OptionType::Int, int64_t{0},
       "query/key width per head; 0 means d_model / num_heads", 0, 4096},
      {"head_v_dim", OptionType::Int, int64_t{0},
       "value width per head; 0 means 2 * head_k_dim (expand_v = 2)", 0, 4096},
      {"conv_kernel", OptionType::Int, int64_t{4}, "causal conv width over q, k and v", 1, 64},
      {"chunk_size", OptionType::Int, int64_t{32},
       "chunk length in tokens of the parallel form (speed only: results do not depend on it)", 1,
       4096},
      {"negative_eigenvalues", OptionType::Bool, false,
       "b = 2 sigmoid(.) in (0, 2) instead of sigmoid(.): each Householder factor may reflect "
       "(eigenvalue down to -1), which state tracking needs"}};
  for (auto& gate : decay_gate_options(0.0, 16.0)) spec.push_back(std::move(gate));
  return spec;
}

}  // namespace

M2B_REGISTER_MIXER(
    gated_deltaproduct,
    MixerInfo{"gated_deltaproduct",
              "Gated DeltaProduct: num_householder gated delta-rule updates per token (a product "
              "of Householder-like transitions), L2-normalised q/k, a decay gate per head and an "
              "output gate",
              gated_deltaproduct_options(),
              [](int64_t d_model, const Options& o) -> std::shared_ptr<MixerImpl> {
                return std::make_shared<GatedDeltaProductImpl>(d_model, o);
              },
              gated_deltaproduct_parameters, check_gated_deltaproduct});

}  // namespace m2b::models
