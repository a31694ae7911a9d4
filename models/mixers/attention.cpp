// Causal multi-head softmax attention, the quadratic-time baseline. The state is a KV cache, so
// a forward with a state and a step both continue the sequence (positions included).
#include <cmath>
#include <fmt/format.h>

#include "models/mixer.h"

namespace m2b::models {
namespace {

// Rotary embedding (rotate-half form) at absolute positions offset .. offset+S-1.
// x: (B, H, S, head_dim).
torch::Tensor rotate(const torch::Tensor& x, int64_t offset, double base) {
  const int64_t half = x.size(-1) / 2;
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(x.device());
  auto inv_freq = torch::pow(base, -torch::arange(half, f64) / static_cast<double>(half));
  auto angles = torch::outer(torch::arange(offset, offset + x.size(2), f64), inv_freq);
  auto cos = angles.cos().to(x.scalar_type()), sin = angles.sin().to(x.scalar_type());
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  return torch::cat({x1 * cos - x2 * sin, x1 * sin + x2 * cos}, -1);
}

class AttentionImpl : public MixerImpl {
 public:
  AttentionImpl(int64_t d_model, const Options& o)
      : heads_(o.get_int("num_heads")), rope_(o.get_string("positional") == "rope"),
        rope_base_(o.get_float("rope_base")) {
    qkv_ = register_module(
        "qkv", torch::nn::Linear(torch::nn::LinearOptions(d_model, 3 * d_model).bias(false)));
    out_ = register_module(
        "out", torch::nn::Linear(torch::nn::LinearOptions(d_model, d_model).bias(false)));
  }

  // State: {keys, values}, each (B, H, T, head_dim) for the T tokens seen so far.
  torch::Tensor forward(const torch::Tensor& x, MixerState* state) override {
    const int64_t B = x.size(0), S = x.size(1), D = x.size(2);
    auto split = [&](const torch::Tensor& t) {
      return t.view({B, S, heads_, D / heads_}).transpose(1, 2);
    };
    auto qkv = qkv_->forward(x).chunk(3, -1);
    auto q = split(qkv[0]), k = split(qkv[1]), v = split(qkv[2]);
    const bool continues = state && !state->empty();
    const int64_t past = continues ? state->tensors[0].size(2) : 0;
    if (rope_) {
      q = rotate(q, past, rope_base_);
      k = rotate(k, past, rope_base_);
    }
    if (continues) {
      k = torch::cat({state->tensors[0], k}, 2);
      v = torch::cat({state->tensors[1], v}, 2);
    }
    if (state) state->tensors = {k, v};
    torch::Tensor y;
    if (past == 0 || S == 1) {
      // The fused kernels' causal mask aligns query i with key i; with a cache of `past` keys a
      // single query sees every key, and otherwise the mask must be shifted by hand.
      y = torch::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0,
                                              /*is_causal=*/past == 0);
    } else {
      auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(x.device());
      auto mask = torch::ones({S, past + S}, bool_opts).tril(past);
      y = torch::scaled_dot_product_attention(q, k, v, mask);
    }
    return out_->forward(y.transpose(1, 2).reshape({B, S, D}));
  }

  torch::Tensor step(const torch::Tensor& x, MixerState& state) override {
    return forward(x.unsqueeze(1), &state).squeeze(1);
  }

 private:
  int64_t heads_;
  bool rope_;
  double rope_base_;
  torch::nn::Linear qkv_{nullptr}, out_{nullptr};
};

void check_attention(int64_t d_model, const Options& o) {
  const int64_t heads = o.get_int("num_heads");
  if (d_model % heads != 0)
    throw OptionError("num_heads", fmt::format("mixer attention: num_heads ({}) must divide "
                                               "d_model ({})",
                                               heads, d_model));
  if (o.get_string("positional") == "rope" && (d_model / heads) % 2 != 0)
    throw OptionError("num_heads",
                      fmt::format("mixer attention: rope needs an even head size, but d_model "
                                  "{} / num_heads {} = {}",
                                  d_model, heads, d_model / heads));
}

}  // namespace

M2B_REGISTER_MIXER(
    attention,
    MixerInfo{"attention",
              "causal multi-head softmax attention (fused scaled_dot_product_attention); the "
              "state is a KV cache",
              {{"num_heads", OptionType::Int, int64_t{4}, "attention heads; must divide d_model", 1,
                1024},
               {"positional",
                OptionType::String,
                std::string("rope"),
                "positional encoding of queries and keys",
                -INFINITY,
                INFINITY,
                {"rope", "none"}},
               {"rope_base", OptionType::Float, 10000.0, "rotary embedding base", 1.0, 1e9}},
              [](int64_t d_model, const Options& o) -> std::shared_ptr<MixerImpl> {
                return std::make_shared<AttentionImpl>(d_model, o);
              },
              [](int64_t d_model, const Options&) { return 4 * d_model * d_model; },  // qkv, out
              check_attention});

}  // namespace m2b::models
