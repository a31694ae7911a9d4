#pragma once
// What the op tests share: float64 inputs, a tight comparison of tensors and the message of a
// rejected call.
#include <torch/torch.h>

#include <stdexcept>
#include <string>

namespace m2b::models::testing {

inline const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

inline bool close(const torch::Tensor& a, const torch::Tensor& b, double tol = 1e-10) {
  return a.sizes() == b.sizes() && torch::allclose(a, b, tol, tol);
}

// The message of the std::invalid_argument that f throws, or "" where it throws none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace m2b::models::testing
