#pragma once
// The head sizes of the delta-rule mixers (gated_deltanet, gated_deltaproduct), which share the
// options num_heads, head_k_dim and head_v_dim and what their zeros mean.
#include <cstdint>

#include "common/options.h"

namespace m2b::models {

struct HeadSizes {
  int64_t heads, k_dim, v_dim;
};

// head_k_dim 0 means d_model / num_heads; head_v_dim 0 means 2 * head_k_dim (expand_v = 2).
inline HeadSizes head_sizes(int64_t d_model, const Options& o) {
  const int64_t heads = o.get_int("num_heads");
  const int64_t k_dim = o.get_int("head_k_dim") > 0 ? o.get_int("head_k_dim") : d_model / heads;
  const int64_t v_dim = o.get_int("head_v_dim") > 0 ? o.get_int("head_v_dim") : 2 * k_dim;
  return {heads, k_dim, v_dim};
}

}  // namespace m2b::models
