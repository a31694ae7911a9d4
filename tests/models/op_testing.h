#pragma once
// What the op tests share: float64 inputs, a tight comparison of tensors and the message of a
// rejected call.
#include <torch/torch.h>

#include <string>

namespace m2b::models::testing {

inline const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

inline bool close(const torch::Tensor& a, const torch::Tensor& b, double tol = 1e-10) {
  return a.sizes() == b.sizes() && torch::allclose(a, b, tol, tol);
}

// The message of the TORCH_CHECK error (c10::Error) that f throws, or "" where it throws none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "";
}

}  // namespace m2b::models::testing
