// The M2RNN recurrence op: the cpu backend (the kernel as an autograd function) agrees with the
// reference (LibTorch step by step, clipping through tensor hooks) on outputs, final state and
// every gradient, across head sharing, lengths, clipping and strided inputs; backends parse and
// print by name; bad inputs and unavailable backends are rejected with messages that say why.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "models/ops/m2rnn_op.h"
#include "tests/catch.h"

using namespace m2b::models;
using torch::Tensor;

namespace {

struct Heads {
  int64_t q, k, v, w, f;
  int64_t n() const { return std::max({q, k, v, w, f}); }
};

struct Case {
  int64_t B, S, K, V;
  Heads heads;
  bool with_h0;
};

std::string describe(const Case& c) {
  return fmt::format("B{} S{} K{} V{} heads q{} k{} v{} w{} f{}{}", c.B, c.S, c.K, c.V, c.heads.q,
                     c.heads.k, c.heads.v, c.heads.w, c.heads.f, c.with_h0 ? " h0" : "");
}

// M2rnnInputs (leaves requiring grad) and the random weights of the loss sum(y Ry) + sum(h Rh).
struct M2rnnInputs {
  Tensor q, k, v, W, f, h0, Ry, Rh;

  M2rnnInputs(const Case& c, torch::ScalarType dtype, uint64_t seed) {
    torch::manual_seed(seed);
    auto o = torch::TensorOptions().dtype(torch::kFloat64);
    const int64_t N = c.heads.n();
    q = torch::randn({c.B, c.S, c.heads.q, c.K}, o) * 0.5;
    k = torch::randn({c.B, c.S, c.heads.k, c.K}, o) * 0.5;
    v = torch::randn({c.B, c.S, c.heads.v, c.V}, o);
    W = torch::eye(c.V, o).repeat({c.heads.w, 1, 1}) + 0.3 * torch::randn({c.heads.w, c.V, c.V}, o);
    f = torch::sigmoid(torch::randn({c.B, c.S, c.heads.f}, o));
    h0 = c.with_h0 ? torch::randn({c.B, N, c.K, c.V}, o) * 0.5 : Tensor();
    Ry = torch::randn({c.B, c.S, N, c.V}, o);
    Rh = torch::randn({c.B, N, c.K, c.V}, o);
    for (Tensor* t : {&q, &k, &v, &W, &f, &h0, &Ry, &Rh})
      if (t->defined()) *t = t->to(dtype).set_requires_grad(t != &Ry && t != &Rh);
  }

  std::vector<Tensor> leaves() const {
    std::vector<Tensor> out = {q, k, v, W, f};
    if (h0.defined()) out.push_back(h0);
    return out;
  }
};

// y, the final state and the gradient of every leaf.
struct Outcome {
  Tensor y, h_final;
  std::vector<Tensor> grads;
};

Outcome run(const M2rnnInputs& in, M2rnnBackend backend, double grad_clip) {
  auto [y, h] = m2rnn_recurrence(in.q, in.k, in.v, in.W, in.f, in.h0, grad_clip, backend);
  auto loss = (y * in.Ry).sum() + (h * in.Rh).sum();
  return {y.detach(), h.detach(), torch::autograd::grad({loss}, in.leaves())};
}

void check_agree(const Outcome& a, const Outcome& b, double rtol, double atol) {
  CHECK(torch::allclose(a.y, b.y.to(a.y.scalar_type()), rtol, atol));
  CHECK(torch::allclose(a.h_final, b.h_final.to(a.y.scalar_type()), rtol, atol));
  const char* names[] = {"dq", "dk", "dv", "dW", "df", "dh0"};
  REQUIRE(a.grads.size() == b.grads.size());
  for (size_t i = 0; i < a.grads.size(); ++i) {
    INFO(names[i] << " max abs diff "
                  << (a.grads[i] - b.grads[i].to(a.y.scalar_type())).abs().max().item<double>());
    CHECK(torch::allclose(a.grads[i], b.grads[i].to(a.y.scalar_type()), rtol, atol));
  }
}

const std::vector<Case>& cases() {
  static const std::vector<Case> list = {
      {2, 1, 4, 4, {1, 1, 1, 1, 1}, false},   // one step
      {2, 7, 4, 3, {1, 1, 4, 4, 4}, true},    // odd length, q and k shared (the paper's layout)
      {3, 5, 16, 16, {1, 1, 2, 2, 2}, true},  // the vectorised width
      {1, 6, 3, 8, {4, 2, 1, 4, 2}, true},    // every input shared differently
      {2, 4, 5, 5, {2, 2, 2, 1, 1}, false},   // one W and one f for all heads
      {2, 33, 4, 8, {1, 1, 2, 2, 2}, true},   // the cpu backend's checkpoint chunks, one partial
  };
  return list;
}

// The message of what fn throws: the op's TORCH_CHECK errors (c10::Error) without their
// backtrace, the backend names' std::invalid_argument. (Not error_of: in a unity batch that name
// is op_testing.h's, which catches c10::Error alone.)
std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("M2RNN reference and cpu backends agree in float64, clipping on and off", "[m2rnn]") {
  for (const Case& c : cases())
    for (double clip : {0.0, 0.05}) {
      INFO(describe(c) << " clip " << clip);
      const M2rnnInputs in(c, torch::kFloat64, 3);
      check_agree(run(in, M2rnnBackend::Cpu, clip), run(in, M2rnnBackend::Reference, clip), 1e-10,
                  1e-12);
    }
}

TEST_CASE("M2RNN clipping at 0.05 is active in the agreement cases", "[m2rnn]") {
  // Otherwise agreement with clipping on would prove nothing about it.
  const M2rnnInputs in(cases()[1], torch::kFloat64, 3);
  const Outcome clipped = run(in, M2rnnBackend::Cpu, 0.05), free = run(in, M2rnnBackend::Cpu, 0);
  CHECK(torch::equal(clipped.y, free.y));
  CHECK_FALSE(torch::allclose(clipped.grads[3], free.grads[3]));
}

TEST_CASE("M2RNN cpu backend in float32 follows the float64 reference", "[m2rnn]") {
  for (const Case& c : cases()) {
    INFO(describe(c));
    const M2rnnInputs in64(c, torch::kFloat64, 4), in32(c, torch::kFloat32, 4);
    check_agree(run(in32, M2rnnBackend::Cpu, 0.5), run(in64, M2rnnBackend::Reference, 0.5), 1e-4,
                1e-4);
  }
}

TEST_CASE("M2RNN cpu backend takes slices of a fused projection and non-contiguous inputs",
          "[m2rnn]") {
  const Case c{2, 5, 4, 8, {1, 1, 2, 2, 2}, true};
  const M2rnnInputs in(c, torch::kFloat64, 5);
  // [q | k | v | f] side by side in one (B, S, C) tensor, as the layer's projection makes them.
  auto fused = torch::cat({in.q.detach().flatten(2), in.k.detach().flatten(2),
                           in.v.detach().flatten(2), in.f.detach()},
                          -1)
                   .set_requires_grad(true);
  const int64_t qw = c.heads.q * c.K, kw = c.heads.k * c.K, vw = c.heads.v * c.V;
  auto q = fused.narrow(-1, 0, qw).unflatten(-1, {c.heads.q, c.K});
  auto k = fused.narrow(-1, qw, kw).unflatten(-1, {c.heads.k, c.K});
  auto v = fused.narrow(-1, qw + kw, vw).unflatten(-1, {c.heads.v, c.V});
  auto f = fused.narrow(-1, qw + kw + vw, c.heads.f);
  // W transposed twice: the same values with a non-contiguous layout.
  auto W = in.W.detach().transpose(1, 2).contiguous().transpose(1, 2).set_requires_grad(true);
  auto [y, h] = m2rnn_recurrence(q, k, v, W, f, in.h0, 0.3, M2rnnBackend::Cpu);
  auto grads = torch::autograd::grad({(y * in.Ry).sum() + (h * in.Rh).sum()}, {fused, W});

  const Outcome expected = run(in, M2rnnBackend::Reference, 0.3);
  CHECK(torch::allclose(y, expected.y, 1e-12, 1e-12));
  CHECK(torch::allclose(h, expected.h_final, 1e-12, 1e-12));
  auto expected_fused = torch::cat({expected.grads[0].flatten(2), expected.grads[1].flatten(2),
                                    expected.grads[2].flatten(2), expected.grads[4]},
                                   -1);
  CHECK(torch::allclose(grads[0], expected_fused, 1e-10, 1e-12));
  CHECK(torch::allclose(grads[1], expected.grads[3], 1e-10, 1e-12));
}

TEST_CASE("M2RNN backends agree when only y or only the final state is used", "[m2rnn]") {
  const M2rnnInputs in(cases()[2], torch::kFloat64, 6);
  for (bool use_y : {true, false}) {
    INFO((use_y ? "y only" : "final state only"));
    std::vector<std::vector<Tensor>> grads;
    for (auto backend : {M2rnnBackend::Cpu, M2rnnBackend::Reference}) {
      auto [y, h] = m2rnn_recurrence(in.q, in.k, in.v, in.W, in.f, in.h0, 0.2, backend);
      auto loss = use_y ? (y * in.Ry).sum() : (h * in.Rh).sum();
      // The final state does not depend on q: the reference leaves its gradient undefined.
      grads.push_back(torch::autograd::grad({loss}, in.leaves(), {}, {}, false,
                                            /*allow_unused=*/true));
    }
    const auto leaves = in.leaves();
    for (size_t i = 0; i < grads[0].size(); ++i) {
      auto as_tensor = [&](const Tensor& g) {
        return g.defined() ? g : torch::zeros_like(leaves[i]);
      };
      CHECK(torch::allclose(as_tensor(grads[0][i]), as_tensor(grads[1][i]), 1e-10, 1e-12));
    }
    if (!use_y) CHECK(torch::equal(grads[0][0], torch::zeros_like(in.q)));
  }
}

TEST_CASE("M2RNN cpu backend without gradients matches the training forward", "[m2rnn]") {
  const M2rnnInputs in(cases()[3], torch::kFloat32, 7);
  auto [y, h] = m2rnn_recurrence(in.q, in.k, in.v, in.W, in.f, in.h0, 1.0, M2rnnBackend::Cpu);
  torch::NoGradGuard no_grad;
  auto [y_inf, h_inf] =
      m2rnn_recurrence(in.q, in.k, in.v, in.W, in.f, in.h0, 1.0, M2rnnBackend::Cpu);
  CHECK_FALSE(y_inf.requires_grad());
  CHECK(torch::equal(y.detach(), y_inf));
  CHECK(torch::equal(h.detach(), h_inf));
}

TEST_CASE("M2RNN auto backend runs bfloat16 on CPU through the reference", "[m2rnn]") {
  const M2rnnInputs in64(cases()[1], torch::kFloat64, 8), in16(cases()[1], torch::kBFloat16, 8);
  auto [y16, h16] = m2rnn_recurrence(in16.q, in16.k, in16.v, in16.W, in16.f, in16.h0, 1.0);
  CHECK(y16.scalar_type() == torch::kBFloat16);
  auto [y, h] = m2rnn_recurrence(in64.q, in64.k, in64.v, in64.W, in64.f, in64.h0, 1.0);
  // bfloat16 inputs carry about 3 significant digits.
  CHECK(torch::allclose(y16.to(torch::kFloat64), y, 0.05, 0.05));
  CHECK(message_of([&] {
          m2rnn_recurrence(in16.q, in16.k, in16.v, in16.W, in16.f, in16.h0, 1.0, M2rnnBackend::Cpu);
        }) ==
        "m2rnn_recurrence: backend cpu runs float32 and float64 tensors on the CPU, got BFloat16 "
        "on cpu (backend reference or auto runs any)");
}

TEST_CASE("M2RNN backends parse and print by name", "[m2rnn]") {
  for (const std::string name : {"auto", "reference", "cpu", "cuda", "cublas"})
    CHECK(to_string(parse_m2rnn_backend(name)) == name);
  CHECK(message_of([] { parse_m2rnn_backend("gpu"); }) ==
        "unknown M2RNN backend 'gpu' (valid: auto, reference, cpu, cuda, cublas)");
}

TEST_CASE("M2RNN cuda backends refuse CPU tensors with a reason", "[m2rnn]") {
  const M2rnnInputs in(cases()[0], torch::kFloat32, 9);
  for (auto backend : {M2rnnBackend::Cuda, M2rnnBackend::Cublas}) {
    const std::string message =
        message_of([&] { m2rnn_recurrence(in.q, in.k, in.v, in.W, in.f, in.h0, 1.0, backend); });
    INFO(message);
    CHECK(contains(message, "backend " + to_string(backend) + " needs"));
  }
}

TEST_CASE("M2RNN op rejects inconsistent inputs, naming the tensor", "[m2rnn]") {
  const M2rnnInputs in(cases()[1], torch::kFloat64, 10);  // B2 S7 K4 V3, heads q1 k1 v4 w4 f4
  auto call = [&](Tensor q, Tensor k, Tensor v, Tensor W, Tensor f, Tensor h0) {
    return message_of([&] { m2rnn_recurrence(q, k, v, W, f, h0, 1.0, M2rnnBackend::Cpu); });
  };
  const auto [q, k, v, W, f, h0] = std::tuple(in.q, in.k, in.v, in.W, in.f, in.h0);
  CHECK(call(q, k.narrow(-1, 0, 3), v, W, f, h0) ==
        "m2rnn_recurrence: k must be (B, S, Nk, K) = (2, 7, Nk, 4) as q gives, got (2, 7, 1, 3)");
  CHECK(call(q, k, v, W.narrow(-1, 0, 2), f, h0) ==
        "m2rnn_recurrence: W must be (Nw, V, V) with V = 3 as v gives, got (4, 3, 2)");
  CHECK(call(q, k, v, W.narrow(0, 0, 3), f, h0) ==
        "m2rnn_recurrence: M2rnnShape: head count Nw = 3 must divide N = 4 (the largest of Nq, "
        "Nk, Nv, Nw, Nf)");
  CHECK(call(q, k, v, W, f.narrow(1, 0, 6), h0) ==
        "m2rnn_recurrence: f must be (B, S, Nf) = (2, 7, Nf) as q gives, got (2, 6, 4)");
  CHECK(call(q, k, v, W, f, h0.narrow(2, 0, 2)) ==
        "m2rnn_recurrence: h0 must be (B, N, K, V) = (2, 4, 4, 3), got (2, 4, 2, 3)");
  CHECK(call(q, k, v.to(torch::kFloat32), W, f, h0) ==
        "m2rnn_recurrence: v is Float on cpu, but q is Double on cpu; all inputs must match");
  CHECK(call(q.flatten(2), k, v, W, f, h0) ==
        "m2rnn_recurrence: q must be (B, S, Nq, K), got (2, 7, 4)");
}
