// The CUDA backends of the M2RNN recurrence against the CPU oracle in double: relative error of
// y, the final state and every gradient, on fresh random inputs, outputs poisoned before each run.
// The oracle is itself checked against the naive loop (kernels/m2rnn_naive.h) on the same inputs.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/catch.h"
#include "tests/kernels/m2rnn_gpu_problem.h"

namespace {

using namespace m2b::testing;
using m2b::kernels::M2rnnShape;
using kc::M2rnnCudaOptions;
using kc::M2rnnMath;

enum class Backend { fused, cublas };

// Bounds on ||out - ref|| / ||ref|| (docs/gpu-kernels.md): fp32 math far under
// 1e-5; tf32 and tanh.approx near 3e-4 per product, bf16 operands 1e-3 .. 1e-2; a recurrence
// carries a few of these, hence the margins.
double bound(bool bf16, M2rnnMath math) {
  if (bf16) return 2e-2;
  return math == M2rnnMath::exact ? 1e-5 : 3e-3;
}

// Runs one backend forward + backward and returns the largest relative error; every error is
// checked against `tol` and printed.
template <typename T>
double check_backend(const ProblemSpec& spec, Backend backend, M2rnnCudaOptions options,
                     double tol) {
  const Problem<T> problem(spec);
  const auto ref = problem.oracle();
  // The test shapes are small enough for the naive loop, and these inputs (strided, shared heads)
  // are ones the CPU tests do not draw.
  const auto naive = problem.oracle(Problem<T>::Oracle::naive);
  for (const auto& [name, values] : ref.out)
    if (name != "dh0" || spec.h0) CHECK(rel_error(values, naive.out.at(name)) < 1e-12);
  auto dev = problem.upload();
  const M2rnnShape& s = spec.shape;
  if (backend == Backend::fused) {
    DeviceArray<float> ck(kc::m2rnn_checkpoint_bytes(s, options) / 4);
    DeviceArray<char> ws(kc::m2rnn_fused_backward_workspace_bytes<T>(s, options));
    kc::m2rnn_fused_forward<T>(dev.fwd, options, ck.get(), nullptr);
    kc::m2rnn_fused_backward<T>(dev.bwd, options, ck.get(), ws.get(), ws.size(), nullptr);
  } else {
    cublasHandle_t handle;
    REQUIRE(cublasCreate(&handle) == CUBLAS_STATUS_SUCCESS);
    DeviceArray<float> states(kc::m2rnn_cublas_states_bytes(s) / 4);
    DeviceArray<char> ws(kc::m2rnn_cublas_workspace_bytes<T>(s));
    kc::m2rnn_cublas_forward<T>(dev.fwd, states.get(), ws.get(), ws.size(), handle, nullptr);
    kc::m2rnn_cublas_backward<T>(dev.bwd, states.get(), ws.get(), ws.size(), handle, nullptr);
    cublasDestroy(handle);
  }
  cuda_ok(cudaDeviceSynchronize(), "run");
  double worst = 0;
  std::string line;
  for (const auto& [name, array] : dev.outputs()) {
    if (name == "dh0" && !spec.h0) continue;  // written, but no input receives it
    const double err = rel_error(array->download(), ref.out.at(name));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2e", err);
    line += " " + name + "=" + buf;
    CHECK(err < tol);
    worst = std::max(worst, err);
  }
  std::printf("%s %s K=%lld V=%lld S=%lld:%s\n", backend == Backend::fused ? "fused" : "cublas",
              std::is_same_v<T, float> ? kc::to_string(options.math) : "bf16", (long long)s.K,
              (long long)s.V, (long long)s.S, line.c_str());
  INFO(line);
  return worst;
}

ProblemSpec spec_of(int64_t B, int64_t S, int64_t K, int64_t V, int64_t N, uint64_t seed) {
  ProblemSpec spec;
  spec.shape.B = B, spec.shape.S = S, spec.shape.K = K, spec.shape.V = V;
  spec.shape.Nq = spec.shape.Nk = spec.shape.Nv = spec.shape.Nw = spec.shape.Nf = N;
  spec.seed = seed;
  return spec;
}

M2rnnCudaOptions opts(M2rnnMath math, int64_t every) {
  M2rnnCudaOptions o;
  o.math = math;
  o.state_checkpoint_every = every;
  return o;
}

// The fused kernels' three paths, fp32 exact, fp32 on tensor cores (tf32) and bf16, each at its
// bound, with a state checkpoint every `every` steps.
void check_fused_paths(const ProblemSpec& spec, int64_t every) {
  check_backend<float>(spec, Backend::fused, opts(M2rnnMath::exact, every),
                       bound(false, M2rnnMath::exact));
  check_backend<float>(spec, Backend::fused, opts(M2rnnMath::tensor, every),
                       bound(false, M2rnnMath::tensor));
  check_backend<kc::bf16>(spec, Backend::fused, opts(M2rnnMath::tensor, every),
                          bound(true, M2rnnMath::tensor));
}

}  // namespace

TEST_CASE("fused kernels match the oracle for every supported K and V", "[gpu][m2rnn]") {
  uint64_t seed = 100;
  for (int64_t K : {16, 32, 64, 128})
    for (int64_t V : {16, 32, 64}) {
      // S = 37 over checkpoints every 8 steps: five chunks, the last one partial.
      ProblemSpec spec = spec_of(2, 37, K, V, 3, ++seed);
      spec.grad_clip = 0.5;
      check_fused_paths(spec, 8);
    }
}

TEST_CASE("fused kernels handle sequence lengths around the tile and chunk sizes", "[gpu][m2rnn]") {
  uint64_t seed = 200;
  for (int64_t S : {1, 2, 7, 8, 9, 63, 64, 65, 130}) {
    const ProblemSpec spec = spec_of(1, S, 32, 16, 2, ++seed);
    check_backend<float>(spec, Backend::fused, opts(M2rnnMath::exact, 16),
                         bound(false, M2rnnMath::exact));
    check_backend<kc::bf16>(spec, Backend::fused, opts(M2rnnMath::tensor, 64),
                            bound(true, M2rnnMath::tensor));
  }
}

TEST_CASE("fused backward with recompute warps spans long chunks", "[gpu][m2rnn]") {
  // K V >= 4096: a second warp group recomputes the states a tile ahead of the reverse step.
  // S = 75 over checkpoints every 32 steps: pass 1 saves tile starts to scratch, and the last
  // chunk (11 steps) ends in a partial tile.
  uint64_t seed = 250;
  for (const auto& [K, V] : {std::pair<int64_t, int64_t>{64, 64}, {128, 32}}) {
    ProblemSpec spec = spec_of(1, 75, K, V, 2, ++seed);
    spec.grad_clip = 0.5;
    check_backend<float>(spec, Backend::fused, opts(M2rnnMath::tensor, 32),
                         bound(false, M2rnnMath::tensor));
    check_backend<kc::bf16>(spec, Backend::fused, opts(M2rnnMath::tensor, 32),
                            bound(true, M2rnnMath::tensor));
  }
}

TEST_CASE("fused kernels share heads, take strided inputs, optional h0 and clip", "[gpu][m2rnn]") {
  struct Case {
    int64_t Nq, Nk, Nv, Nw, Nf;
    bool h0, dh_final, fused_inputs;
    double clip;
  };
  const Case cases[] = {
      {1, 1, 5, 5, 5, true, true, true, 1.0},     // the lm400m pattern: q, k shared by all heads
      {2, 4, 1, 2, 4, false, true, false, 0.0},   // every kind of sharing, no h0, no clipping
      {4, 4, 4, 1, 2, true, false, true, 0.05},   // one W for all heads; clipping that bites
      {3, 3, 3, 3, 3, false, false, false, 0.0},  // N = 3 chains per batch element
  };
  uint64_t seed = 300;
  for (const Case& c : cases) {
    ProblemSpec spec = spec_of(3, 29, 64, 16, 1, ++seed);
    auto& s = spec.shape;
    s.Nq = c.Nq, s.Nk = c.Nk, s.Nv = c.Nv, s.Nw = c.Nw, s.Nf = c.Nf;
    spec.h0 = c.h0, spec.dh_final = c.dh_final, spec.fused_inputs = c.fused_inputs;
    spec.grad_clip = c.clip;
    check_fused_paths(spec, 8);
    check_backend<float>(spec, Backend::cublas, {}, 1e-5);
    check_backend<kc::bf16>(spec, Backend::cublas, {}, bound(true, M2rnnMath::tensor));
  }
}

TEST_CASE("tensor-core error per sequence length", "[gpu][m2rnn]") {
  // The lm400m head shape; prints the error growth with S (bounds as above).
  uint64_t seed = 400;
  for (int64_t S : {64, 256, 1024}) {
    ProblemSpec spec = spec_of(1, S, 64, 16, 2, ++seed);
    spec.grad_clip = 1.0;
    check_backend<float>(spec, Backend::fused, opts(M2rnnMath::tensor, 64),
                         bound(false, M2rnnMath::tensor));
    check_backend<kc::bf16>(spec, Backend::fused, opts(M2rnnMath::tensor, 64),
                            bound(true, M2rnnMath::tensor));
  }
}

TEST_CASE("unsupported shapes and options are rejected with the supported set", "[gpu][m2rnn]") {
  // The error must be std::invalid_argument and name the supported set.
  auto rejected_with = [](auto&& fn, const std::string& part) {
    try {
      fn();
    } catch (const std::invalid_argument& e) {
      INFO(e.what());
      return std::string(e.what()).find(part) != std::string::npos;
    }
    return false;
  };
  auto shape = [](int64_t K, int64_t V) { return spec_of(1, 8, K, V, 1, 1).shape; };
  CHECK(rejected_with([&] { kc::m2rnn_fused_check<float>(shape(48, 16), {}); },
                      "K in {16, 32, 64, 128}"));
  CHECK(
      rejected_with([&] { kc::m2rnn_fused_check<float>(shape(64, 8), {}); }, "V in {16, 32, 64}"));
  CHECK(rejected_with(
      [&] { kc::m2rnn_fused_check<kc::bf16>(shape(64, 16), opts(M2rnnMath::exact, 64)); },
      "math = exact takes fp32"));
  CHECK(rejected_with(
      [&] { kc::m2rnn_fused_check<float>(shape(64, 16), opts(M2rnnMath::tensor, 7)); },
      "state_checkpoint_every = 7"));
  auto bad_heads = shape(16, 16);
  bad_heads.Nq = 3, bad_heads.Nv = 2;
  CHECK(rejected_with([&] { kc::m2rnn_fused_check<float>(bad_heads, {}); }, "must divide N"));
  // bf16 rows at odd elements cannot be staged 4 bytes at a time (checked before any launch).
  m2b::kernels::M2rnnForward<kc::bf16> odd{};
  odd.shape = shape(64, 16);
  odd.q = odd.k = odd.v = reinterpret_cast<const kc::bf16*>(std::uintptr_t{64});
  odd.q_stride = odd.k_stride = odd.v_stride = {8 * 64, 64, 64};
  odd.k_stride.s = 65;
  CHECK(rejected_with([&] { kc::m2rnn_fused_forward<kc::bf16>(odd, {}, nullptr, nullptr); },
                      "bf16 k rows must start at even elements"));
}

TEST_CASE("small shapes for compute-sanitizer", "[gpu][m2rnn][sanitize]") {
  // scripts/gpu-check.sh runs this case under memcheck and racecheck: every kernel and path on a
  // shape small enough for the tools, with head sharing, two chunks and a partial tile.
  ProblemSpec spec = spec_of(2, 11, 32, 16, 2, 500);
  spec.shape.Nq = 1;
  spec.grad_clip = 0.5;
  check_fused_paths(spec, 8);
  check_backend<kc::bf16>(spec, Backend::cublas, {}, bound(true, M2rnnMath::tensor));
  // K 64, V 16 (lm400m's head): two warps a chain, which meet in shared memory every round (the
  // dq, dk and dv, df buffers by the round's parity); k shared, so dk goes out by atomics.
  ProblemSpec two_warps = spec_of(2, 11, 64, 16, 2, 502);
  two_warps.shape.Nk = 1;
  check_backend<kc::bf16>(two_warps, Backend::fused, opts(M2rnnMath::tensor, 8),
                          bound(true, M2rnnMath::tensor));
  // K V = 4096: the forward whose warp pairs swap column halves through shared memory, and the
  // backward whose second warp group recomputes the states.
  const ProblemSpec wide = spec_of(1, 11, 64, 64, 1, 501);
  check_backend<float>(wide, Backend::fused, opts(M2rnnMath::tensor, 8),
                       bound(false, M2rnnMath::tensor));
  check_backend<kc::bf16>(wide, Backend::fused, opts(M2rnnMath::tensor, 8),
                          bound(true, M2rnnMath::tensor));
}
