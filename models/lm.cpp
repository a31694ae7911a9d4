#include "models/lm.h"

#include <cmath>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace m2b::models {

static int64_t mlp_hidden_size(const ModelConfig& config) {
  if (config.mlp_hidden > 0) return config.mlp_hidden;
  const int64_t h = std::llround(8.0 * static_cast<double>(config.d_model) / 3.0);
  return (h + 7) / 8 * 8;
}

static void require_positive(const std::string& field, int64_t value) {
  if (value <= 0)
    throw OptionError("model." + field,
                      fmt::format("model.{} must be a positive integer, got {}", field, value));
}

// A layer's options checked against its mixer's, defaults filled in.
static Options layer_options(const MixerInfo& info,
                             const std::map<std::string, OptionValue>& options) {
  return resolve_options("mixer " + info.name, info.options, options);
}

void ModelConfig::validate() const {
  require_positive("vocab_size", vocab_size);
  require_positive("d_model", d_model);
  require_positive("n_layers", n_layers);
  if (mlp_hidden < 0)
    throw OptionError("model.mlp_hidden", fmt::format("model.mlp_hidden must be >= 0 (0 means "
                                                      "8/3 d_model rounded up to 8), got {}",
                                                      mlp_hidden));
  if (layers.empty())
    throw OptionError("model.layers",
                      fmt::format("model.layers must name at least one mixer (valid: {})",
                                  fmt::join(MixerRegistry::instance().names(), ", ")));
  if (static_cast<int64_t>(layers.size()) > n_layers)
    throw OptionError("model.layers",
                      fmt::format("model.layers lists {} mixers but model.n_layers is {}; the list "
                                  "repeats to fill n_layers, so it may not be longer",
                                  layers.size(), n_layers));
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string prefix = fmt::format("model.layers[{}]", i);
    try {
      const MixerInfo& info = MixerRegistry::instance().get(layers[i].mixer);
      Options resolved = layer_options(info, layers[i].options);
      if (info.check) info.check(d_model, resolved);
    } catch (const OptionError& e) {
      // The registry names the key "mixer"; an option error names the option.
      throw OptionError(prefix + "." + e.key(), prefix + ": " + e.what());
    }
  }
}

int64_t ModelConfig::parameter_count() const {
  const int64_t hidden = mlp_hidden_size(*this);
  // The embedding, the head unless tied, the final norm; per layer two norms, the SwiGLU MLP's
  // three matrices and the mixer.
  int64_t count = vocab_size * d_model * (tie_embeddings ? 1 : 2) + d_model;
  for (int64_t i = 0; i < n_layers; ++i) {
    const LayerConfig& layer = layers[i % layers.size()];
    const MixerInfo& info = MixerRegistry::instance().get(layer.mixer);
    count += 2 * d_model + 3 * d_model * hidden +
             info.parameter_count(d_model, layer_options(info, layer.options));
  }
  return count;
}

// "a", "a or b", "a, b or c"
static std::string alternatives(const std::vector<std::string>& values) {
  if (values.size() < 2) return values.empty() ? "" : values[0];
  return fmt::format("{} or {}", fmt::join(values.begin(), values.end() - 1, ", "), values.back());
}

std::optional<DeviceConflict> ModelConfig::device_conflict(const std::string& device) const {
  for (size_t i = 0; i < layers.size(); ++i) {
    const MixerInfo& info = MixerRegistry::instance().get(layers[i].mixer);
    if (!info.device_tie) continue;
    const Options given = layer_options(info, layers[i].options);
    const std::optional<DeviceTie> tie = info.device_tie(given);
    if (!tie || tie->device == device) continue;
    // The values of the tying option under which the layer computes on `device`.
    std::vector<std::string> there;
    for (const OptionSpec& spec : info.options)
      if (spec.name == tie->option)
        for (const std::string& choice : spec.choices) {
          std::map<std::string, OptionValue> options = layers[i].options;
          options[tie->option] = choice;
          const std::optional<DeviceTie> other = info.device_tie(layer_options(info, options));
          if (!other || other->device == device) there.push_back(choice);
        }
    return DeviceConflict{
        fmt::format("model.layers[{}] ({}) has {} {}, which computes only on {}; on {}, give that "
                    "layer {} {}",
                    i, info.name, tie->option, to_string(given.values().at(tie->option)),
                    tie->device, device, tie->option, alternatives(there)),
        tie->device};
  }
  return std::nullopt;
}

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const LayerConfig& layer, int64_t d_model, int64_t mlp_hidden)
      : mixer_norm_(register_module("mixer_norm", RMSNorm(d_model))),
        mixer_(register_module("mixer", make_mixer(layer.mixer, d_model, layer.options))),
        mlp_norm_(register_module("mlp_norm", RMSNorm(d_model))),
        mlp_(register_module("mlp", SwiGLU(d_model, mlp_hidden))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = x + mixer_->forward(mixer_norm_->forward(x));
    return x + mlp_->forward(mlp_norm_->forward(x));
  }

 private:
  RMSNorm mixer_norm_;
  std::shared_ptr<MixerImpl> mixer_;
  RMSNorm mlp_norm_;
  SwiGLU mlp_;
};

LanguageModelImpl::LanguageModelImpl(const ModelConfig& config) : config_(config) {
  config_.validate();
  // GPT-style small embeddings: with tied weights, unit-variance rows would make huge logits.
  embedding_ =
      register_module("embedding", torch::nn::Embedding(config_.vocab_size, config_.d_model));
  torch::nn::init::normal_(embedding_->weight, 0.0, 0.02);
  const int64_t hidden = mlp_hidden_size(config_);
  for (int64_t i = 0; i < config_.n_layers; ++i) {
    const LayerConfig& layer = config_.layers[i % config_.layers.size()];
    blocks_.push_back(register_module(fmt::format("block{}", i),
                                      std::make_shared<BlockImpl>(layer, config_.d_model, hidden)));
  }
  final_norm_ = register_module("final_norm", RMSNorm(config_.d_model));
  if (!config_.tie_embeddings)
    head_ = register_module(
        "head", torch::nn::Linear(
                    torch::nn::LinearOptions(config_.d_model, config_.vocab_size).bias(false)));
}

torch::Tensor LanguageModelImpl::forward(const torch::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 2, "LanguageModel: tokens must be (B, S), got ", tokens.sizes());
  auto x = embedding_->forward(tokens);
  for (auto& block : blocks_) x = block->forward(x);
  x = final_norm_->forward(x);
  return head_ ? head_->forward(x) : torch::matmul(x, embedding_->weight.t());
}

// Matrices of projections decay; norms, biases (1-D), and the gates' A_log / dt_bias and the
// skip weight D do not, whatever their shape.
static bool takes_decay(const std::string& name, const torch::Tensor& p) {
  const std::string leaf = name.substr(name.rfind('.') + 1);
  return p.dim() >= 2 && leaf != "A_log" && leaf != "dt_bias" && leaf != "D";
}

std::vector<torch::Tensor> LanguageModelImpl::decayed_parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& item : named_parameters())
    if (takes_decay(item.key(), item.value())) out.push_back(item.value());
  return out;
}

std::vector<torch::Tensor> LanguageModelImpl::undecayed_parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& item : named_parameters())
    if (!takes_decay(item.key(), item.value())) out.push_back(item.value());
  return out;
}

}  // namespace m2b::models
