#pragma once
// The options of the softplus decay gate (models/layers.h, DecayGate) that mixers built on it
// share, so that every such mixer spells and checks them the same way.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "common/options.h"

namespace m2b::models {

// a_init_min and a_init_max: the range A = exp(A_log) starts uniform in.
inline std::vector<OptionSpec> decay_gate_options(double default_min, double default_max) {
  return {{"a_init_min", OptionType::Float, default_min,
           "lower end of the initial decay rate A (log decay = -A dt)", 0.0, 1e4},
          {"a_init_max", OptionType::Float, default_max,
           "upper end of the initial decay rate A; at least a_init_min", 0.0, 1e4}};
}

inline void check_decay_gate_options(const std::string& mixer, const Options& o) {
  const double lo = o.get_float("a_init_min"), hi = o.get_float("a_init_max");
  if (lo > hi)
    throw OptionError(
        "a_init_min",
        fmt::format("mixer {}: a_init_min ({}) must not exceed a_init_max ({})", mixer, lo, hi));
}

}  // namespace m2b::models
