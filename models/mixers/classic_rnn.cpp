// The paper's non-linear small-state baselines: Elman RNN (tanh), GRU and LSTM with a vector
// state, on LibTorch's recurrent modules (cuDNN on GPU), projected back to d_model.
// One template serves all three; only the shape of the carried state differs.
#include <fmt/format.h>

#include <type_traits>

#include "models/mixer.h"

namespace m2b::models {
namespace {

// hidden_size 0 means d_model.
int64_t hidden_size(int64_t d_model, const Options& o) {
  return o.get_int("hidden_size") > 0 ? o.get_int("hidden_size") : d_model;
}

template <typename Net>
class ClassicRnnImpl : public MixerImpl {
  static constexpr bool kHasCell = std::is_same_v<Net, torch::nn::LSTM>;

 public:
  ClassicRnnImpl(int64_t d_model, const Options& o) {
    const int64_t hidden = hidden_size(d_model, o);
    using NetOptions = std::decay_t<decltype(std::declval<typename Net::Impl>().options)>;
    net_ = register_module("rnn", Net(NetOptions(d_model, hidden).batch_first(true)));
    out_ = register_module(
        "out", torch::nn::Linear(torch::nn::LinearOptions(hidden, d_model).bias(false)));
  }

  // State: {h} (1, B, hidden), plus the LSTM's cell {h, c}.
  torch::Tensor forward(const torch::Tensor& x, MixerState* state) override {
    const bool continues = state && !state->empty();
    torch::Tensor y;
    if constexpr (kHasCell) {
      std::optional<std::tuple<torch::Tensor, torch::Tensor>> hc;
      if (continues) hc = std::make_tuple(state->tensors[0], state->tensors[1]);
      auto [out, final_hc] = net_->forward(x, hc);
      y = out;
      if (state) state->tensors = {std::get<0>(final_hc), std::get<1>(final_hc)};
    } else {
      auto [out, h] = net_->forward(x, continues ? state->tensors[0] : torch::Tensor());
      y = out;
      if (state) state->tensors = {h};
    }
    return out_->forward(y);
  }

  torch::Tensor step(const torch::Tensor& x, MixerState& state) override {
    return forward(x.unsqueeze(1), &state).squeeze(1);
  }

 private:
  Net net_{nullptr};
  torch::nn::Linear out_{nullptr};
};

template <typename Net>
MixerInfo classic_rnn_info(std::string name, std::string description) {
  return MixerInfo{
      std::move(name),
      std::move(description),
      {{"hidden_size", OptionType::Int, int64_t{0}, "state width; 0 means d_model", 0, 65536}},
      [](int64_t d_model, const Options& o) -> std::shared_ptr<MixerImpl> {
        return std::make_shared<ClassicRnnImpl<Net>>(d_model, o);
      },
      [](int64_t d_model, const Options& o) {
        const int64_t hidden = hidden_size(d_model, o);
        // Each gate's input and hidden weights and two biases; then the projection back.
        constexpr int64_t kGates = std::is_same_v<Net, torch::nn::LSTM>  ? 4
                                   : std::is_same_v<Net, torch::nn::GRU> ? 3
                                                                         : 1;
        return kGates * hidden * (d_model + hidden + 2) + hidden * d_model;
      },
      {}};
}

}  // namespace

M2B_REGISTER_MIXER(rnn, classic_rnn_info<torch::nn::RNN>(
                            "rnn", "Elman RNN, h_t = tanh(W x_t + U h_{t-1} + b), vector state"));
M2B_REGISTER_MIXER(gru, classic_rnn_info<torch::nn::GRU>("gru", "GRU with a vector state"));
M2B_REGISTER_MIXER(lstm,
                   classic_rnn_info<torch::nn::LSTM>("lstm", "LSTM with a vector state and cell"));

}  // namespace m2b::models
