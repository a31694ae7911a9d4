// `m2bench models [NAME...]`: the registered sequence mixers, what each is, and its options
// (the keys a suite's `model.layers[i]` may set).
#include <fmt/format.h>

#include <string>
#include <vector>

#include "common/options.h"
#include "harness/cli/cli.h"
#include "models/mixer.h"

namespace m2b::cli {

void add_models_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "models", "List the sequence mixers a model's layers may use, with their options");
  auto names = std::make_shared<std::vector<std::string>>();
  cmd->add_option("names", *names, "Show only these mixers (default: all)");
  cmd->footer(
      "A model config names one mixer per layer, e.g.\n"
      "  model: {d_model: 64, n_layers: 2, layers: [{mixer: m2rnn, k_dim: 16}]}\n"
      "A shorter layers list repeats to fill n_layers (hybrids).");
  cmd->callback([names] {
    const auto& registry = models::MixerRegistry::instance();
    const auto shown = names->empty() ? registry.names() : *names;
    std::vector<const models::MixerInfo*> infos;  // all looked up first: a typo prints nothing
    for (const auto& name : shown) infos.push_back(&registry.get(name));
    for (size_t i = 0; i < infos.size(); ++i) {
      const models::MixerInfo& info = *infos[i];
      fmt::print("{}{}: {}{}\n", i ? "\n" : "", info.name, info.description,
                 info.supports_float64 ? "" : " (no float64)");
      fmt::print("{}", info.options.empty() ? "  (no options)\n" : describe_options(info.options));
    }
  });
}

}  // namespace m2b::cli
