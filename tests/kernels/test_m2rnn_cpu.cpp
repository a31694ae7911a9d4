// The CPU M2RNN kernel, torch-free: gradients equal central finite differences in double for
// every input, clipping clamps the total gradient reaching each state (checked by hand on a
// scalar example), float follows double, strided inputs need no copy, both instruction-set
// builds agree and equal the naive loop (kernels/m2rnn_naive.h), and bad shapes are rejected by
// name.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/m2rnn.h"
#include "kernels/m2rnn_cpu_internal.h"
#include "kernels/m2rnn_naive.h"
#include "tests/catch.h"

using namespace m2b::kernels;

namespace {

// splitmix64: the same numbers on every machine.
struct Rng {
  uint64_t state;
  double uniform(double lo, double hi) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return lo + (hi - lo) * static_cast<double>(z >> 11) * 0x1.0p-53;
  }
  std::vector<double> vec(int64_t n, double lo, double hi) {
    std::vector<double> out(static_cast<size_t>(n));
    for (auto& x : out) x = uniform(lo, hi);
    return out;
  }
};

// One problem: inputs in double, contiguous, plus the upstream gradients of the loss
// sum(y * dy) + sum(h_final * dh_final).
struct Problem {
  M2rnnShape shape;
  std::vector<double> q, k, v, W, f, h0, dy, dh_final;
  bool with_h0 = true;

  Problem(M2rnnShape s, uint64_t seed, bool h0_given = true) : shape(s), with_h0(h0_given) {
    Rng rng{seed};
    const int64_t B = s.B, S = s.S, N = s.N(), K = s.K, V = s.V;
    q = rng.vec(B * S * s.Nq * K, -1, 1);
    k = rng.vec(B * S * s.Nk * K, -1, 1);
    v = rng.vec(B * S * s.Nv * V, -1, 1);
    W = rng.vec(s.Nw * V * V, -0.6, 0.6);
    f = rng.vec(B * S * s.Nf, 0.05, 0.95);
    h0 = rng.vec(B * N * K * V, -0.5, 0.5);
    dy = rng.vec(B * S * N * V, -1, 1);
    dh_final = rng.vec(B * N * K * V, -1, 1);
  }
};

template <typename T>
std::vector<T> cast(const std::vector<double>& x) {
  return std::vector<T>(x.begin(), x.end());
}

SeqStrides contiguous(const M2rnnShape& s, int64_t heads, int64_t inner) {
  return {s.S * heads * inner, heads * inner, inner};
}

// Outputs of one forward and backward in precision T.
template <typename T>
struct Result {
  std::vector<T> y, h_final, checkpoints, candidates, dq, dk, dv, dW, df, dh0;
};

enum class Impl { cpu, naive };

template <typename T>
Result<T> run(const Problem& pr, double grad_clip, Impl impl = Impl::cpu) {
  const M2rnnShape& s = pr.shape;
  const int64_t B = s.B, S = s.S, N = s.N(), K = s.K, V = s.V;
  auto q = cast<T>(pr.q), k = cast<T>(pr.k), v = cast<T>(pr.v), W = cast<T>(pr.W),
       f = cast<T>(pr.f), h0 = cast<T>(pr.h0), dy = cast<T>(pr.dy), dhf = cast<T>(pr.dh_final);
  Result<T> r;
  r.y.resize(B * S * N * V);
  r.h_final.resize(B * N * K * V);
  r.checkpoints.resize(B * N * m2rnn_cpu_checkpoint_count(S) * K * V);
  r.candidates.resize(B * N * S * K * V);
  M2rnnForward<T> fwd{s,
                      q.data(),
                      contiguous(s, s.Nq, K),
                      k.data(),
                      contiguous(s, s.Nk, K),
                      v.data(),
                      contiguous(s, s.Nv, V),
                      W.data(),
                      f.data(),
                      contiguous(s, s.Nf, 1),
                      pr.with_h0 ? h0.data() : nullptr,
                      r.y.data(),
                      r.h_final.data(),
                      r.checkpoints.data(),
                      r.candidates.data()};
  if (impl == Impl::naive) m2rnn_forward_naive(fwd);
  else m2rnn_forward_cpu(fwd);
  r.dq.resize(q.size());
  r.dk.resize(k.size());
  r.dv.resize(v.size());
  r.dW.resize(W.size());
  r.df.resize(f.size());
  r.dh0.resize(h0.size());
  M2rnnBackward<T> bwd{
      fwd,         grad_clip,   dy.data(),   dhf.data(),  r.dq.data(),
      r.dk.data(), r.dv.data(), r.dW.data(), r.df.data(), pr.with_h0 ? r.dh0.data() : nullptr};
  if (impl == Impl::naive) m2rnn_backward_naive(bwd);
  else m2rnn_backward_cpu(bwd);
  return r;
}

double loss(const Problem& pr) {
  const Result<double> r = run<double>(pr, 0);
  double l = 0;
  for (size_t e = 0; e < r.y.size(); ++e) l += r.y[e] * pr.dy[e];
  for (size_t e = 0; e < r.h_final.size(); ++e) l += r.h_final[e] * pr.dh_final[e];
  return l;
}

// Every element of `input` (a member of `pr`) against its central difference.
void check_against_finite_differences(Problem pr, std::vector<double> Problem::*input,
                                      const std::vector<double>& analytic, const char* name) {
  const double eps = 1e-6;
  std::vector<double>& x = pr.*input;
  REQUIRE(x.size() == analytic.size());
  for (size_t e = 0; e < x.size(); ++e) {
    const double saved = x[e];
    x[e] = saved + eps;
    const double up = loss(pr);
    x[e] = saved - eps;
    const double down = loss(pr);
    x[e] = saved;
    const double numeric = (up - down) / (2 * eps);
    INFO(name << "[" << e << "]: analytic " << analytic[e] << ", numeric " << numeric);
    CHECK(std::abs(analytic[e] - numeric) <= 1e-7 * (1 + std::abs(numeric)));
  }
}

template <typename T>
double max_abs_diff(const std::vector<T>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t e = 0; e < a.size(); ++e) m = std::max(m, std::abs(double(a[e]) - b[e]));
  return m;
}

template <typename T, typename U>
void check_close(const Result<T>& a, const Result<U>& b, double tol) {
  auto as_double = [](const std::vector<U>& x) { return std::vector<double>(x.begin(), x.end()); };
  CHECK(max_abs_diff(a.y, as_double(b.y)) <= tol);
  CHECK(max_abs_diff(a.h_final, as_double(b.h_final)) <= tol);
  CHECK(max_abs_diff(a.dq, as_double(b.dq)) <= tol);
  CHECK(max_abs_diff(a.dk, as_double(b.dk)) <= tol);
  CHECK(max_abs_diff(a.dv, as_double(b.dv)) <= tol);
  CHECK(max_abs_diff(a.dW, as_double(b.dW)) <= tol);
  CHECK(max_abs_diff(a.df, as_double(b.df)) <= tol);
  CHECK(max_abs_diff(a.dh0, as_double(b.dh0)) <= tol);
}

M2rnnShape shape(int64_t B, int64_t S, int64_t K, int64_t V, int64_t Nq, int64_t Nk, int64_t Nv,
                 int64_t Nw, int64_t Nf) {
  M2rnnShape s;
  s.B = B, s.S = S, s.K = K, s.V = V, s.Nq = Nq, s.Nk = Nk, s.Nv = Nv, s.Nw = Nw, s.Nf = Nf;
  return s;
}

}  // namespace

TEST_CASE("M2RNN CPU gradients equal central finite differences for every input", "[m2rnn]") {
  // V = 3 takes the generic loops, V = 8 the vector ones; head counts share q/k, v/W/f, or mix.
  // S = 37 spans two whole checkpoint chunks and a partial one (kCpuCheckpointEvery = 16).
  static_assert(kCpuCheckpointEvery == 16);
  const M2rnnShape shapes[] = {
      shape(2, 3, 3, 3, 1, 1, 2, 2, 2),
      shape(2, 4, 2, 8, 2, 2, 1, 1, 1),
      shape(1, 5, 3, 3, 4, 2, 1, 4, 2),
      shape(1, 37, 2, 3, 1, 1, 2, 2, 2),
  };
  // A clip far above every gradient must change nothing.
  for (double clip : {0.0, 1e6}) {
    for (const auto& s : shapes) {
      const Problem pr(s, 42 + s.V + s.Nq);
      const Result<double> r = run<double>(pr, clip);
      INFO("S " << s.S << " V " << s.V << " heads " << s.Nq << s.Nk << s.Nv << s.Nw << s.Nf
                << " clip " << clip);
      check_against_finite_differences(pr, &Problem::q, r.dq, "dq");
      check_against_finite_differences(pr, &Problem::k, r.dk, "dk");
      check_against_finite_differences(pr, &Problem::v, r.dv, "dv");
      check_against_finite_differences(pr, &Problem::W, r.dW, "dW");
      check_against_finite_differences(pr, &Problem::f, r.df, "df");
      check_against_finite_differences(pr, &Problem::h0, r.dh0, "dh0");
    }
  }
}

TEST_CASE("M2RNN CPU without h0 starts from zeros", "[m2rnn]") {
  Problem pr(shape(2, 3, 4, 8, 1, 1, 2, 2, 2), 7);
  std::fill(pr.h0.begin(), pr.h0.end(), 0.0);
  const Result<double> with_zeros = run<double>(pr, 0.5);
  pr.with_h0 = false;
  Result<double> without = run<double>(pr, 0.5);
  without.dh0 = with_zeros.dh0;  // not computed without h0
  check_close(without, with_zeros, 0.0);
}

// K = V = 1, S = 2: the whole recurrence in scalars, clip c = 1.5.
//   H1 = f1 h0 + (1 - f1) tanh(h0 w + k1 v1),  H2 = f2 H1 + (1 - f2) tanh(H1 w + k2 v2)
// dy2 q2 + dh_final = -3 is clamped to -1.5; what step 2 passes back plus dy1 q1 = 2 is about 1.07,
// inside [-c, c], so it passes unclamped even though dy1 q1 alone exceeds c: the clamp acts on the
// total reaching H1, not on its parts.
TEST_CASE("M2RNN CPU clipping clamps the total gradient reaching each state", "[m2rnn]") {
  const double h0 = 0.2, w = 0.5, k1 = 0.6, v1 = 0.5, f1 = 0.4, q1 = 2.0, dy1 = 1.0;
  const double k2 = 1.0, v2 = -0.4, f2 = 0.3, q2 = 1.0, dy2 = -2.5, dhf = -0.5, c = 1.5;
  Problem pr(shape(1, 2, 1, 1, 1, 1, 1, 1, 1), 1);
  pr.h0 = {h0};
  pr.W = {w};
  pr.q = {q1, q2};
  pr.k = {k1, k2};
  pr.v = {v1, v2};
  pr.f = {f1, f2};
  pr.dy = {dy1, dy2};
  pr.dh_final = {dhf};
  const Result<double> r = run<double>(pr, c);

  const double Z1 = std::tanh(h0 * w + k1 * v1), H1 = f1 * h0 + (1 - f1) * Z1;
  const double Z2 = std::tanh(H1 * w + k2 * v2), H2 = f2 * H1 + (1 - f2) * Z2;
  CHECK(std::abs(r.y[0] - q1 * H1) <= 1e-14);
  CHECK(std::abs(r.y[1] - q2 * H2) <= 1e-14);

  const double G2 = -c;  // q2 dy2 + dh_final = -3
  const double dA2 = (1 - f2) * G2 * (1 - Z2 * Z2);
  const double carry2 = f2 * G2 + dA2 * w;
  const double G1 = q1 * dy1 + carry2;
  REQUIRE(std::abs(G1) < c);
  REQUIRE(q1 * dy1 > c);
  const double dA1 = (1 - f1) * G1 * (1 - Z1 * Z1);
  CHECK(std::abs(r.dq[0] - (H1 * dy1)) <= 1e-14);
  CHECK(std::abs(r.dq[1] - (H2 * dy2)) <= 1e-14);
  CHECK(std::abs(r.df[1] - (G2 * (H1 - Z2))) <= 1e-14);
  CHECK(std::abs(r.df[0] - (G1 * (h0 - Z1))) <= 1e-14);
  CHECK(std::abs(r.dk[1] - (dA2 * v2)) <= 1e-14);
  CHECK(std::abs(r.dv[1] - (dA2 * k2)) <= 1e-14);
  CHECK(std::abs(r.dk[0] - (dA1 * v1)) <= 1e-14);
  CHECK(std::abs(r.dv[0] - (dA1 * k1)) <= 1e-14);
  CHECK(std::abs(r.dW[0] - (H1 * dA2 + h0 * dA1)) <= 1e-14);
  CHECK(std::abs(r.dh0[0] - (f1 * G1 + dA1 * w)) <= 1e-14);
}

TEST_CASE("M2RNN CPU float follows double", "[m2rnn]") {
  for (const auto& s : {shape(3, 17, 16, 16, 1, 1, 4, 4, 4), shape(2, 9, 5, 5, 2, 1, 2, 1, 2)}) {
    const Problem pr(s, 5);
    INFO("V " << s.V);
    check_close(run<float>(pr, 1.0), run<double>(pr, 1.0), 2e-5);
  }
}

TEST_CASE("M2RNN CPU instruction-set builds agree", "[m2rnn]") {
  const CpuIsa best = m2rnn_cpu_isa();
  // V = 16 rows take the vectors of every build; V = 8 floats fall back from AVX-512 to AVX2.
  for (const auto& s : {shape(2, 11, 16, 16, 1, 1, 2, 2, 2), shape(2, 6, 5, 8, 1, 1, 2, 2, 2)}) {
    const Problem pr(s, 9);
    m2rnn_cpu_set_isa(CpuIsa::Baseline);
    const Result<double> d_base = run<double>(pr, 1.0);
    const Result<float> f_base = run<float>(pr, 1.0);
    for (CpuIsa isa : {CpuIsa::Avx2, CpuIsa::Avx512}) {
      if (!m2rnn_cpu_has_isa(isa)) continue;
      INFO("V " << s.V << " isa " << static_cast<int>(isa));
      m2rnn_cpu_set_isa(isa);
      check_close(run<double>(pr, 1.0), d_base, 1e-12);
      check_close(run<float>(pr, 1.0), f_base, 1e-5);
    }
  }
  m2rnn_cpu_set_isa(best);
  CHECK(m2rnn_cpu_has_isa(CpuIsa::Baseline));
}

TEST_CASE("M2RNN CPU kernel equals the naive loop in every instruction-set build", "[m2rnn]") {
  const CpuIsa best = m2rnn_cpu_isa();
  struct Case {
    M2rnnShape shape;
    bool h0;
    double clip;
  };
  // Generic (V 3, 5) and vector rows (V 8, 16), every kind of head sharing, S past one and two
  // checkpoint chunks, no h0, and clipping that bites.
  const Case cases[] = {{shape(2, 7, 4, 3, 1, 1, 2, 2, 2), true, 0.0},
                        {shape(2, 19, 5, 5, 2, 1, 2, 1, 2), false, 0.5},
                        {shape(1, 33, 16, 16, 1, 1, 4, 4, 4), true, 1.0},
                        {shape(3, 17, 8, 8, 2, 4, 1, 2, 4), true, 0.05}};
  uint64_t seed = 40;
  for (const Case& c : cases) {
    const Problem pr(c.shape, ++seed, c.h0);
    const Result<double> naive = run<double>(pr, c.clip, Impl::naive);
    for (CpuIsa isa : {CpuIsa::Baseline, CpuIsa::Avx2, CpuIsa::Avx512}) {
      if (!m2rnn_cpu_has_isa(isa)) continue;
      INFO("V " << c.shape.V << " S " << c.shape.S << " isa " << static_cast<int>(isa));
      m2rnn_cpu_set_isa(isa);
      check_close(run<double>(pr, c.clip), naive, 1e-12);
      check_close(run<float>(pr, c.clip), naive, 5e-5);
    }
  }
  m2rnn_cpu_set_isa(best);
}

TEST_CASE("M2RNN CPU reads strided q, k, v and f in place", "[m2rnn]") {
  // q, k, v and f as slices of one fused (B, S, C) buffer, as the layer's input projection makes.
  const M2rnnShape s = shape(2, 5, 4, 8, 1, 1, 2, 2, 2);
  const Problem pr(s, 11);
  const int64_t B = s.B, S = s.S, N = s.N(), K = s.K, V = s.V;
  const int64_t cq = s.Nq * K, ck = s.Nk * K, cv = s.Nv * V, cf = s.Nf, C = cq + ck + cv + cf + 3;
  std::vector<double> fused(B * S * C, 99.0);
  auto scatter = [&](const std::vector<double>& x, int64_t offset, int64_t width) {
    for (int64_t r = 0; r < B * S; ++r)
      std::copy_n(x.begin() + r * width, width, fused.begin() + r * C + offset);
  };
  scatter(pr.q, 0, cq);
  scatter(pr.k, cq, ck);
  scatter(pr.v, cq + ck, cv);
  scatter(pr.f, cq + ck + cv, cf);
  const SeqStrides fused_stride{S * C, C, 0};
  auto with_head = [&](int64_t h) { return SeqStrides{fused_stride.b, fused_stride.s, h}; };
  std::vector<double> y(B * S * N * V), h_final(B * N * K * V);
  M2rnnForward<double> fwd{s,
                           fused.data(),
                           with_head(K),
                           fused.data() + cq,
                           with_head(K),
                           fused.data() + cq + ck,
                           with_head(V),
                           pr.W.data(),
                           fused.data() + cq + ck + cv,
                           with_head(1),
                           pr.h0.data(),
                           y.data(),
                           h_final.data()};
  m2rnn_forward_cpu(fwd);
  const Result<double> expected = run<double>(pr, 0);
  CHECK(max_abs_diff(y, expected.y) == 0.0);
  CHECK(max_abs_diff(h_final, expected.h_final) == 0.0);
}

TEST_CASE("M2RNN CPU rejects bad shapes by name", "[m2rnn]") {
  auto error_of = [](const std::function<void()>& fn) {
    try {
      fn();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  auto validate = [&](const M2rnnShape& s) { return error_of([&] { s.validate(); }); };
  CHECK(validate(shape(2, 3, 4, 4, 3, 1, 4, 4, 4)) ==
        "M2rnnShape: head count Nq = 3 must divide N = 4 (the largest of Nq, Nk, Nv, Nw, Nf)");
  CHECK(validate(shape(2, 3, 0, 4, 1, 1, 1, 1, 1)) == "M2rnnShape: K must be positive, got 0");
  CHECK(validate(shape(2, 3, 4, 4, 1, 1, 1, 1, -2)) == "M2rnnShape: Nf must be positive, got -2");
  CHECK(validate(shape(2, 3, 4, 4, 1, 2, 4, 4, 1)) == "accepted");

  // The kernels validate too, before touching any pointer.
  M2rnnForward<float> fwd{};
  fwd.shape = shape(1, 1, 1, 1, 2, 3, 1, 1, 1);
  CHECK(error_of([&] { m2rnn_forward_cpu(fwd); }).find("Nq = 2 must divide N = 3") !=
        std::string::npos);
  M2rnnBackward<float> bwd{};
  bwd.fwd.shape = shape(1, 1, 1, 1, 1, 1, 1, 1, 1);
  CHECK(error_of([&] { m2rnn_backward_cpu(bwd); }).find("fwd.checkpoints is null") !=
        std::string::npos);
}
