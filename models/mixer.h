#pragma once
// The sequence-mixer interface and its registry. A new baseline is one file in models/mixers/
// that defines a MixerImpl subclass and registers it with M2B_REGISTER_MIXER; the conformance
// tests, the CLI (`m2bench models`) and the suite validator find it through the registry.
#include <torch/torch.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/options.h"

namespace m2b::models {

// What a mixer carries from one call to the next: its recurrent state (and conv history, KV
// cache, ...), as the mixer chooses. An empty state means "start of the sequence".
struct MixerState {
  std::vector<torch::Tensor> tensors;
  bool empty() const { return tensors.empty(); }
};

class MixerImpl : public torch::nn::Module {
 public:
  // Parallel (training) form. x: (B, S, D) -> (B, S, D). When `state` is given, the sequence
  // continues from it (if not empty) and the final state is written back into it, so that
  // splitting a sequence in two with the carried state equals running it whole.
  virtual torch::Tensor forward(const torch::Tensor& x, MixerState* state = nullptr) = 0;
  // One token. x: (B, D) -> (B, D); reads and updates `state` (empty at the first token).
  virtual torch::Tensor step(const torch::Tensor& x, MixerState& state) = 0;
};

struct DeviceTie {
  std::string option;  // its key, as suites and `m2bench models` name it
  std::string device;  // "cpu" or "cuda"
};

using MixerFactory =
    std::function<std::shared_ptr<MixerImpl>(int64_t d_model, const Options& options)>;

struct MixerInfo {
  std::string name;
  std::string description;
  std::vector<OptionSpec> options;
  MixerFactory factory;
  // How many parameters the factory's mixer has, computed from the options alone: the memory
  // check counts it before a run allocates anything (an LSTM of hidden_size 65536 is refused,
  // not half-built). The conformance suite holds it equal to the built mixer's count.
  std::function<int64_t(int64_t d_model, const Options&)> parameter_count;
  // Checks combinations of options that the per-option ranges cannot (a head count that must
  // divide a width, ...); throws OptionError naming the key. May be empty.
  std::function<void(int64_t d_model, const Options&)> check;
  // Whether the mixer computes in float64 (the conformance suite runs there where it can).
  bool supports_float64 = true;
  // The option that ties a layer to one kind of device (a backend that computes only there) and
  // that device, "cpu" or "cuda"; nullopt where the layer runs on either. A run on the other
  // device is refused before it trains. May be empty: the mixer runs anywhere.
  std::function<std::optional<DeviceTie>(const Options&)> device_tie;
};

class MixerRegistry {
 public:
  static MixerRegistry& instance();
  void add(MixerInfo info);
  const MixerInfo& get(const std::string& name) const;  // throws OptionError listing valid names
  std::vector<std::string> names() const;               // sorted

 private:
  std::vector<MixerInfo> infos_;
};

// Validates the options (per-option ranges, then the mixer's own check) and builds the mixer.
std::shared_ptr<MixerImpl> make_mixer(const std::string& name, int64_t d_model,
                                      const std::map<std::string, OptionValue>& options);

namespace detail {
struct MixerRegistration {
  explicit MixerRegistration(MixerInfo info) { MixerRegistry::instance().add(std::move(info)); }
};
}  // namespace detail

// The registration objects live in a static library; models/CMakeLists.txt links it whole so
// the linker keeps them.
#define M2B_REGISTER_MIXER(ident, ...) \
  static ::m2b::models::detail::MixerRegistration m2b_mixer_registration_##ident { __VA_ARGS__ }

}  // namespace m2b::models
