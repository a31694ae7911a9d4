// The SSD and gated delta rule ops on a CUDA device in float32: the chunked form and the token
// loop both match the float64 CPU loop (outputs, final states and gradients) over several chunks.
#include <functional>
#include <vector>

#include "models/ops/delta_rule.h"
#include "models/ops/ssd.h"
#include "tests/catch.h"

using namespace m2b::models::ops;

namespace {

using Leaves = std::vector<torch::Tensor>;
using Op = std::function<std::pair<torch::Tensor, torch::Tensor>(const Leaves&)>;

// Outputs, final state and gradients of `op` (of a fixed weighted sum of both) at `leaves`.
std::vector<torch::Tensor> results(const Op& op, const Leaves& inputs, const Leaves& weights) {
  Leaves leaves;
  for (const auto& t : inputs) leaves.push_back(t.detach().requires_grad_(true));
  auto [out, state] = op(leaves);
  auto loss =
      (out * weights[0].to(out.options())).sum() + (state * weights[1].to(state.options())).sum();
  std::vector<torch::Tensor> all = {out.detach(), state.detach()};
  for (auto& g : torch::autograd::grad({loss}, leaves)) all.push_back(g);
  return all;
}

// The float64 CPU loop is the oracle for `chunked` and `loop` run in float32 on CUDA.
void check_on_cuda(const Op& chunked, const Op& loop, const Leaves& inputs_f64,
                   const Leaves& weights) {
  REQUIRE(torch::cuda::is_available());
  at::globalContext().setAllowTF32CuBLAS(false);
  auto expected = results(loop, inputs_f64, weights);
  Leaves on_cuda;
  for (const auto& t : inputs_f64) on_cuda.push_back(t.to(torch::kCUDA, torch::kFloat32));
  for (const Op* op : {&chunked, &loop}) {
    auto got = results(*op, on_cuda, weights);
    for (size_t i = 0; i < got.size(); ++i) {
      CAPTURE(op == &chunked, i);
      CHECK(got[i].device().is_cuda());
      auto scale = expected[i].abs().max().item<double>();
      CHECK((got[i].cpu().to(torch::kFloat64) - expected[i]).abs().max().item<double>() <=
            1e-4 * (1 + scale));
    }
  }
}

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

}  // namespace

TEST_CASE("ssd chunked and recurrent forms on CUDA match the float64 CPU recurrence",
          "[ssd][gpu]") {
  torch::manual_seed(0);
  const int64_t b = 2, S = 100, H = 4, P = 16, N = 8;
  Leaves inputs = {torch::randn({b, S, H, P}, kF64), -torch::rand({b, S, H}, kF64),
                   torch::randn({b, S, 1, N}, kF64), torch::randn({b, S, 1, N}, kF64),
                   torch::randn({b, H, N, P}, kF64)};
  Leaves weights = {torch::randn({b, S, H, P}, kF64), torch::randn({b, H, N, P}, kF64)};
  auto unpack = [](const SsdResult& r) { return std::pair{r.y, r.final_state}; };
  check_on_cuda(
      [&](const Leaves& l) { return unpack(ssd_chunked(l[0], l[1], l[2], l[3], 32, l[4])); },
      [&](const Leaves& l) { return unpack(ssd_recurrent(l[0], l[1], l[2], l[3], l[4])); }, inputs,
      weights);
}

TEST_CASE("delta rule chunked and recurrent forms on CUDA match the float64 CPU recurrence",
          "[delta_rule][gpu]") {
  torch::manual_seed(1);
  const int64_t b = 2, S = 100, H = 4, K = 16, V = 32;
  auto unit = [](torch::Tensor t) { return t / t.norm(2, -1, true); };
  Leaves inputs = {unit(torch::randn({b, S, H, K}, kF64)), unit(torch::randn({b, S, H, K}, kF64)),
                   torch::randn({b, S, H, V}, kF64),       -torch::rand({b, S, H}, kF64),
                   2 * torch::rand({b, S, H}, kF64),       torch::randn({b, H, K, V}, kF64)};
  Leaves weights = {torch::randn({b, S, H, V}, kF64), torch::randn({b, H, K, V}, kF64)};
  auto unpack = [](const DeltaRuleResult& r) { return std::pair{r.o, r.final_state}; };
  check_on_cuda(
      [&](const Leaves& l) {
        return unpack(delta_rule_chunked(l[0], l[1], l[2], l[3], l[4], 32, l[5]));
      },
      [&](const Leaves& l) {
        return unpack(delta_rule_recurrent(l[0], l[1], l[2], l[3], l[4], l[5]));
      },
      inputs, weights);
}
