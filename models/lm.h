#pragma once
// The language-model backbone: token embedding, n_layers blocks of
//   x = x + mixer(RMSNorm(x));  x = x + SwiGLU(RMSNorm(x))
// then a final RMSNorm and the output head (optionally tied to the embedding).
#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/options.h"
#include "models/layers.h"
#include "models/mixer.h"

namespace m2b::models {

struct LayerConfig {
  std::string mixer;                           // a registered mixer name
  std::map<std::string, OptionValue> options;  // validated by make_mixer
};

// A layer held to one device by an option's value.
struct DeviceConflict {
  // The layer, its option and value, and the values under which it would compute where asked.
  std::string layer;
  std::string device;  // the one it computes on
};

struct ModelConfig {
  int64_t vocab_size = 0;
  int64_t d_model = 64;
  int64_t n_layers = 2;
  // Mixer of each layer. A shorter list repeats to fill n_layers, so [gated_deltanet,
  // gated_deltanet, m2rnn] with n_layers 6 is a hybrid with an M2RNN every third layer.
  std::vector<LayerConfig> layers;
  int64_t mlp_hidden = 0;  // SwiGLU hidden width; 0 means round(8/3 d_model) up to a multiple of 8
  bool tie_embeddings = false;
  // Throws OptionError (key "model.<field>" or the mixer's option key) for bad sizes or options.
  void validate() const;
  // The parameters the model builds, from the config alone (each mixer's parameter_count).
  int64_t parameter_count() const;
  // The first layer that cannot compute on `device` ("cpu" or "cuda"), held there by an option
  // (MixerInfo::device_tie); nullopt where every layer can.
  std::optional<DeviceConflict> device_conflict(const std::string& device) const;
};

class BlockImpl;  // one residual block: mixer and MLP, each behind an RMSNorm (models/lm.cpp)

class LanguageModelImpl : public torch::nn::Module {
 public:
  explicit LanguageModelImpl(const ModelConfig& config);
  // tokens: (B, S) int64 -> logits (B, S, vocab_size)
  torch::Tensor forward(const torch::Tensor& tokens);
  const ModelConfig& config() const { return config_; }
  // Parameters that take weight decay (matrices of projections) and those that do not (norms,
  // biases, gates' A_log / dt_bias, D): AdamW gets the two groups.
  std::vector<torch::Tensor> decayed_parameters() const;
  std::vector<torch::Tensor> undecayed_parameters() const;

 private:
  ModelConfig config_;
  torch::nn::Embedding embedding_{nullptr};
  std::vector<std::shared_ptr<BlockImpl>> blocks_;  // registered as blocks.<i>
  RMSNorm final_norm_{nullptr};
  torch::nn::Linear head_{nullptr};  // null when tied: the logits use the embedding matrix
};
TORCH_MODULE(LanguageModel);

}  // namespace m2b::models
