#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "models/mixer.h"

namespace m2b::models {

MixerRegistry& MixerRegistry::instance() {
  static MixerRegistry registry;
  return registry;
}

void MixerRegistry::add(MixerInfo info) {
  // The memory check counts every layer's parameters before a run builds anything.
  if (!info.parameter_count)
    throw std::logic_error(
        fmt::format("mixer '{}' is registered without a parameter_count "
                    "(MixerInfo, models/mixer.h)",
                    info.name));
  for (const auto& existing : infos_)
    if (existing.name == info.name)
      throw std::logic_error(fmt::format("mixer '{}' is registered twice", info.name));
  infos_.push_back(std::move(info));
}

const MixerInfo& MixerRegistry::get(const std::string& name) const {
  for (const auto& info : infos_)
    if (info.name == name) return info;
  throw OptionError("mixer", fmt::format("unknown mixer '{}' (valid: {})", excerpt(name),
                                         fmt::join(names(), ", ")));
}

std::vector<std::string> MixerRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& info : infos_) out.push_back(info.name);
  std::sort(out.begin(), out.end());
  return out;
}

std::shared_ptr<MixerImpl> make_mixer(const std::string& name, int64_t d_model,
                                      const std::map<std::string, OptionValue>& options) {
  const MixerInfo& info = MixerRegistry::instance().get(name);
  if (d_model <= 0)
    throw OptionError("d_model",
                      fmt::format("mixer {}: d_model must be positive, got {}", name, d_model));
  Options resolved = resolve_options("mixer " + name, info.options, options);
  if (info.check) info.check(d_model, resolved);
  return info.factory(d_model, resolved);
}

}  // namespace m2b::models
