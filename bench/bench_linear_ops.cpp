// Forward + backward of the linear-recurrence ops on CPU, chunked form against the token loop, at
// the sizes of a small model (batch 8, 4 heads): the chunked forms should win from S = 64 on.
// On a shared machine run with OMP_NUM_THREADS=1: spinning OpenMP workers distort the timings.
// Names: BM_<op>/<form>/S<seq>[_L<chunk>]; tokens/s is the rate counter.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <functional>
#include <vector>

#include "models/ops/delta_rule.h"
#include "models/ops/ssd.h"

namespace {

namespace ops = m2b::models::ops;
constexpr int64_t kBatch = 8, kHeads = 4;

// `loss_of` builds the op's output from its leaves; each iteration runs it and its backward.
void forward_backward(
    benchmark::State& state, int64_t seq,
    const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& loss_of,
    std::vector<torch::Tensor> leaves) {
  for (auto& t : leaves) t.requires_grad_(true);
  for (auto _ : state) {
    for (auto& t : leaves) t.mutable_grad() = torch::Tensor();
    loss_of(leaves).backward();
  }
  state.counters["tokens/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * kBatch * seq), benchmark::Counter::kIsRate);
}

// Mamba-2 at d_model 64: head_dim 32 (expand 2), d_state 32, one group.
void ssd(benchmark::State& state, int64_t seq, int64_t chunk) {
  torch::manual_seed(0);
  std::vector<torch::Tensor> leaves = {
      torch::randn({kBatch, seq, kHeads, 32}), -torch::rand({kBatch, seq, kHeads}) * 0.1,
      torch::randn({kBatch, seq, 1, 32}), torch::randn({kBatch, seq, 1, 32})};
  forward_backward(
      state, seq,
      [&](const std::vector<torch::Tensor>& l) {
        auto r = chunk > 0 ? ops::ssd_chunked(l[0], l[1], l[2], l[3], chunk)
                           : ops::ssd_recurrent(l[0], l[1], l[2], l[3]);
        return r.y.sum() + r.final_state.sum();
      },
      leaves);
}

// Gated DeltaNet at d_model 64: head_k_dim 16, head_v_dim 32.
void delta_rule(benchmark::State& state, int64_t seq, int64_t chunk) {
  torch::manual_seed(0);
  auto unit = [](torch::Tensor t) { return t / t.norm(2, -1, true); };
  std::vector<torch::Tensor> leaves = {
      unit(torch::randn({kBatch, seq, kHeads, 16})), unit(torch::randn({kBatch, seq, kHeads, 16})),
      torch::randn({kBatch, seq, kHeads, 32}), -torch::rand({kBatch, seq, kHeads}) * 0.1,
      torch::rand({kBatch, seq, kHeads})};
  forward_backward(
      state, seq,
      [&](const std::vector<torch::Tensor>& l) {
        auto r = chunk > 0 ? ops::delta_rule_chunked(l[0], l[1], l[2], l[3], l[4], chunk)
                           : ops::delta_rule_recurrent(l[0], l[1], l[2], l[3], l[4]);
        return r.o.sum() + r.final_state.sum();
      },
      leaves);
}

void register_all() {
  using Op = void (*)(benchmark::State&, int64_t, int64_t);
  for (auto [name, op] : {std::pair<const char*, Op>{"ssd", ssd}, {"delta_rule", delta_rule}})
    for (int64_t seq : {64, 256, 1024}) {
      benchmark::RegisterBenchmark(fmt::format("BM_{}/recurrent/S{}", name, seq).c_str(),
                                   [op = op, seq](benchmark::State& s) { op(s, seq, 0); })
          ->Unit(benchmark::kMillisecond);
      for (int64_t chunk : {16, 32, 64})
        benchmark::RegisterBenchmark(
            fmt::format("BM_{}/chunked/S{}_L{}", name, seq, chunk).c_str(),
            [op = op, seq, chunk](benchmark::State& s) { op(s, seq, chunk); })
            ->Unit(benchmark::kMillisecond);
    }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
