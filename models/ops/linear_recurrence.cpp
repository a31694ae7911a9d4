#include "models/ops/linear_recurrence.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <limits>
#include <vector>

namespace m2b::models::ops {

torch::Tensor segsum(const torch::Tensor& a) {
  const int64_t T = a.size(-1);
  auto lower = torch::ones({T, T}, a.options().dtype(torch::kBool)).tril();
  auto strictly_lower = lower.tril(-1);
  auto sizes = a.sizes().vec();
  sizes.push_back(T);
  // rows[..., i, j] = a_i where i > j, so its cumsum down the rows is a_{j+1} + ... + a_i.
  auto rows = a.unsqueeze(-1).expand(sizes).masked_fill(strictly_lower.logical_not(), 0);
  return rows.cumsum(-2).masked_fill(lower.logical_not(), -std::numeric_limits<double>::infinity());
}

torch::Tensor pad_time(const torch::Tensor& t, int64_t length) {
  const int64_t extra = length - t.size(1);
  if (extra == 0) return t;
  // constant_pad_nd lists (before, after) pairs from the last dimension backwards.
  std::vector<int64_t> pad(2 * (t.dim() - 1), 0);
  pad.back() = extra;
  return torch::constant_pad_nd(t, pad, 0);
}

std::string shape_of(const torch::Tensor& t) {
  return t.defined() ? fmt::format("({})", fmt::join(t.sizes(), ", ")) : "undefined";
}

void require(const char* op, bool ok, const std::string& message) {
  TORCH_CHECK(ok, op, ": ", message);
}

}  // namespace m2b::models::ops
