#include "models/ops/m2rnn_op.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>

#include "kernels/m2rnn.h"
#ifdef M2BENCH_HAVE_CUDA
#include "models/ops/m2rnn_cuda_binding.h"
#endif

namespace m2b::models {

const std::vector<std::string>& m2rnn_backend_names() {
  static const std::vector<std::string> names = {"auto", "reference", "cpu", "cuda", "cublas"};
  return names;
}

M2rnnBackend parse_m2rnn_backend(const std::string& name) {
  const auto& names = m2rnn_backend_names();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<M2rnnBackend>(i);
  throw std::invalid_argument(
      fmt::format("unknown M2RNN backend '{}' (valid: {})", name, fmt::join(names, ", ")));
}

std::string to_string(M2rnnBackend backend) {
  return m2rnn_backend_names().at(static_cast<size_t>(backend));
}

namespace {

using kernels::M2rnnShape;
using torch::Tensor;

std::string sizes_of(const Tensor& t) { return fmt::format("({})", fmt::join(t.sizes(), ", ")); }

// Checks that the inputs fit together and returns their shape; the messages name the tensor.
M2rnnShape check_m2rnn_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& W,
                              const Tensor& f, const Tensor& h0) {
  auto fail = [](const std::string& what) { TORCH_CHECK(false, "m2rnn_recurrence: ", what); };
  const std::pair<const char*, const Tensor*> named[] = {{"q", &q}, {"k", &k}, {"v", &v},
                                                         {"W", &W}, {"f", &f}, {"h0", &h0}};
  for (const auto& [name, t] : named) {
    if (!t->defined() && t != &h0) fail(fmt::format("{} is undefined", name));
    if (!t->defined()) continue;
    if (t->scalar_type() != q.scalar_type() || t->device() != q.device())
      fail(fmt::format("{} is {} on {}, but q is {} on {}; all inputs must match", name,
                       c10::toString(t->scalar_type()), t->device().str(),
                       c10::toString(q.scalar_type()), q.device().str()));
  }
  if (q.dim() != 4) fail("q must be (B, S, Nq, K), got " + sizes_of(q));
  M2rnnShape s;
  s.B = q.size(0), s.S = q.size(1), s.Nq = q.size(2), s.K = q.size(3);
  if (k.dim() != 4 || k.size(0) != s.B || k.size(1) != s.S || k.size(3) != s.K)
    fail(fmt::format("k must be (B, S, Nk, K) = ({}, {}, Nk, {}) as q gives, got {}", s.B, s.S, s.K,
                     sizes_of(k)));
  s.Nk = k.size(2);
  if (v.dim() != 4 || v.size(0) != s.B || v.size(1) != s.S)
    fail(fmt::format("v must be (B, S, Nv, V) = ({}, {}, Nv, V) as q gives, got {}", s.B, s.S,
                     sizes_of(v)));
  s.Nv = v.size(2), s.V = v.size(3);
  if (W.dim() != 3 || W.size(1) != s.V || W.size(2) != s.V)
    fail(fmt::format("W must be (Nw, V, V) with V = {} as v gives, got {}", s.V, sizes_of(W)));
  s.Nw = W.size(0);
  if (f.dim() != 3 || f.size(0) != s.B || f.size(1) != s.S)
    fail(fmt::format("f must be (B, S, Nf) = ({}, {}, Nf) as q gives, got {}", s.B, s.S,
                     sizes_of(f)));
  s.Nf = f.size(2);
  try {
    s.validate();
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
  const std::vector<int64_t> state{s.B, s.N(), s.K, s.V};
  if (h0.defined() && h0.sizes() != torch::IntArrayRef(state))
    fail(fmt::format("h0 must be (B, N, K, V) = ({}), got {}", fmt::join(state, ", "),
                     sizes_of(h0)));
  return s;
}

// The definition, one step at a time. Half-precision inputs are computed in float32 (tanh and
// the H W product accumulate in float32, as the reference kernels do).
std::pair<Tensor, Tensor> recurrence_reference(const M2rnnShape& s, const Tensor& q,
                                               const Tensor& k, const Tensor& v, const Tensor& W,
                                               const Tensor& f, const Tensor& h0,
                                               double grad_clip) {
  const int64_t N = s.N();
  const auto compute = q.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  // Head n of an input with `count` heads is head n / (N / count).
  auto per_head = [&](const Tensor& x, int64_t count, int64_t dim) {
    return x.to(compute).repeat_interleave(N / count, dim);
  };
  const Tensor qn = per_head(q, s.Nq, 2), kn = per_head(k, s.Nk, 2), vn = per_head(v, s.Nv, 2);
  const Tensor Wn = per_head(W, s.Nw, 0), fn = per_head(f, s.Nf, 2);
  Tensor H =
      h0.defined() ? h0.to(compute) : torch::zeros({s.B, N, s.K, s.V}, q.options().dtype(compute));
  std::vector<Tensor> ys;
  for (int64_t t = 0; t < s.S; ++t) {
    auto x = kn.select(1, t).unsqueeze(-1) * vn.select(1, t).unsqueeze(-2);  // k v^T (B,N,K,V)
    auto Z = torch::tanh(torch::matmul(H, Wn) + x);
    auto ft = fn.select(1, t).view({s.B, N, 1, 1});
    H = ft * H + (1 - ft) * Z;
    // A tensor hook sees the gradient of H_t once everything that reaches it has accumulated.
    if (grad_clip > 0 && H.requires_grad())
      H.register_hook([grad_clip](Tensor g) { return g.clamp(-grad_clip, grad_clip); });
    ys.push_back(torch::matmul(qn.select(1, t).unsqueeze(-2), H).squeeze(-2));
  }
  return {torch::stack(ys, 1).to(q.scalar_type()), H.to(q.scalar_type())};
}

// Calls fn with a value of the C++ type of `dtype`, float32 or float64.
template <typename Fn>
void dispatch_float(torch::ScalarType dtype, Fn&& fn) {
  if (dtype == torch::kFloat64) fn(double{});
  else fn(float{});
}

// The CPU kernel's inputs. q, k and v need a contiguous last dimension (slices of a fused
// projection have one, so nothing is copied); W and h0 are made contiguous; f may have any
// strides.
struct KernelInputs {
  Tensor q, k, v, W, f, h0;
  KernelInputs(const Tensor& q_, const Tensor& k_, const Tensor& v_, const Tensor& W_,
               const Tensor& f_, const Tensor& h0_)
      : q(inner_contiguous(q_)), k(inner_contiguous(k_)), v(inner_contiguous(v_)),
        W(W_.contiguous()), f(f_), h0(h0_.defined() ? h0_.contiguous() : h0_) {}

  // The kernel's view of them; the outputs are the caller's to attach.
  template <typename T>
  kernels::M2rnnForward<T> view(const M2rnnShape& s) const {
    kernels::M2rnnForward<T> p{};
    p.shape = s;
    p.q = q.data_ptr<T>(), p.q_stride = strides(q);
    p.k = k.data_ptr<T>(), p.k_stride = strides(k);
    p.v = v.data_ptr<T>(), p.v_stride = strides(v);
    p.W = W.data_ptr<T>();
    p.f = f.data_ptr<T>(), p.f_stride = strides(f);
    p.h0 = h0.defined() ? h0.data_ptr<T>() : nullptr;
    return p;
  }

 private:
  static Tensor inner_contiguous(const Tensor& x) {
    return x.size(-1) == 1 || x.stride(-1) == 1 ? x : x.contiguous();
  }
  static kernels::SeqStrides strides(const Tensor& x) {
    return {x.stride(0), x.stride(1), x.stride(2)};
  }
};

// An uninitialised tensor whose storage is recycled: freed, it waits for the next request of its
// byte size. The saved candidates (B N S K V elements) are the training step's largest tensor;
// fresh from the allocator they came as new pages every step (glibc maps blocks over 32 MB
// afresh), and faulting those in cost as much as the kernel: B32 S256 K16 V16 on 1 core, a step
// took 41 ms with fresh storage and 21 ms with recycled. A request no free block fits releases
// the free blocks of other sizes, left over from shapes no longer trained.
Tensor recycled_empty(torch::IntArrayRef sizes, const torch::TensorOptions& options) {
  struct Pool {
    std::mutex mutex;
    std::multimap<size_t, void*> free;  // by byte size
  };
  static Pool* const pool = new Pool;  // never destroyed: a tensor may outlive static destructors
  constexpr std::align_val_t kAlign{64};
  const size_t bytes =
      static_cast<size_t>(c10::multiply_integers(sizes)) * options.dtype().itemsize();
  void* data = nullptr;
  {
    const std::lock_guard<std::mutex> lock(pool->mutex);
    if (auto it = pool->free.find(bytes); it != pool->free.end()) {
      data = it->second;
      pool->free.erase(it);
    } else {
      for (const auto& [size, block] : pool->free) ::operator delete(block, kAlign);
      pool->free.clear();
    }
  }
  if (!data) data = ::operator new(bytes, kAlign);
  auto give_back = [bytes](void* block) {
    const std::lock_guard<std::mutex> lock(pool->mutex);
    pool->free.emplace(bytes, block);
  };
  return torch::from_blob(data, sizes, give_back, options);
}

struct KernelOutputs {
  // The state checkpoints and candidates only where they are saved for backward.
  Tensor y, h_final, checkpoints, candidates;
};

KernelOutputs run_forward_kernel(const M2rnnShape& s, const KernelInputs& in, bool save_states) {
  const auto options = in.q.options();
  KernelOutputs out;
  out.y = torch::empty({s.B, s.S, s.N(), s.V}, options);
  out.h_final = torch::empty({s.B, s.N(), s.K, s.V}, options);
  if (save_states) {
    out.checkpoints =
        torch::empty({s.B, s.N(), kernels::m2rnn_cpu_checkpoint_count(s.S), s.K, s.V}, options);
    out.candidates = recycled_empty({s.B, s.N(), s.S, s.K, s.V}, options);
  }
  dispatch_float(in.q.scalar_type(), [&](auto zero) {
    using T = decltype(zero);
    kernels::M2rnnForward<T> p = in.view<T>(s);
    p.y = out.y.data_ptr<T>();
    p.h_final = out.h_final.data_ptr<T>();
    p.checkpoints = save_states ? out.checkpoints.data_ptr<T>() : nullptr;
    p.candidates = save_states ? out.candidates.data_ptr<T>() : nullptr;
    kernels::m2rnn_forward_cpu(p);
  });
  return out;
}

class M2rnnCpuFunction : public torch::autograd::Function<M2rnnCpuFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const Tensor& q, const Tensor& k, const Tensor& v,
                                                const Tensor& W, const Tensor& f,
                                                const std::optional<Tensor>& h0_given,
                                                double grad_clip) {
    // An undefined h0 travels as nullopt: autograd functions take no undefined tensors.
    const Tensor h0 = h0_given.value_or(Tensor());
    const M2rnnShape s = check_m2rnn_inputs(q, k, v, W, f, h0);
    const KernelInputs in(q, k, v, W, f, h0);
    KernelOutputs out = run_forward_kernel(s, in, /*save_states=*/true);
    ctx->save_for_backward({in.q, in.k, in.v, in.W, in.f, in.h0, out.checkpoints, out.candidates});
    ctx->saved_data["grad_clip"] = grad_clip;
    ctx->set_materialize_grads(false);
    return {out.y, out.h_final};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const KernelInputs in(saved[0], saved[1], saved[2], saved[3], saved[4], saved[5]);
    const Tensor &checkpoints = saved[6], &candidates = saved[7];
    const M2rnnShape s = check_m2rnn_inputs(in.q, in.k, in.v, in.W, in.f, in.h0);
    const auto options = in.q.options();
    const Tensor dy =
        grads[0].defined() ? grads[0].contiguous() : torch::zeros({s.B, s.S, s.N(), s.V}, options);
    const Tensor dh_final = grads[1].defined() ? grads[1].contiguous() : Tensor();
    const Tensor dq = torch::empty(in.q.sizes(), options), dk = torch::empty(in.k.sizes(), options),
                 dv = torch::empty(in.v.sizes(), options), dW = torch::empty(in.W.sizes(), options),
                 df = torch::empty(in.f.sizes(), options);
    const Tensor dh0 =
        in.h0.defined() && ctx->needs_input_grad(5) ? torch::empty_like(in.h0) : Tensor();
    dispatch_float(in.q.scalar_type(), [&](auto zero) {
      using T = decltype(zero);
      kernels::M2rnnBackward<T> p{};
      p.fwd = in.view<T>(s);
      p.fwd.checkpoints = checkpoints.data_ptr<T>();
      p.fwd.candidates = candidates.data_ptr<T>();
      p.grad_clip = ctx->saved_data["grad_clip"].toDouble();
      p.dy = dy.data_ptr<T>();
      p.dh_final = dh_final.defined() ? dh_final.data_ptr<T>() : nullptr;
      p.dq = dq.data_ptr<T>(), p.dk = dk.data_ptr<T>(), p.dv = dv.data_ptr<T>();
      p.dW = dW.data_ptr<T>(), p.df = df.data_ptr<T>();
      p.dh0 = dh0.defined() ? dh0.data_ptr<T>() : nullptr;
      kernels::m2rnn_backward_cpu(p);
    });
    return {dq, dk, dv, dW, df, dh0, Tensor()};
  }
};

std::pair<Tensor, Tensor> recurrence_cpu(const M2rnnShape& s, const Tensor& q, const Tensor& k,
                                         const Tensor& v, const Tensor& W, const Tensor& f,
                                         const Tensor& h0, double grad_clip) {
  TORCH_CHECK(q.device().is_cpu() &&
                  (q.scalar_type() == torch::kFloat32 || q.scalar_type() == torch::kFloat64),
              "m2rnn_recurrence: backend cpu runs float32 and float64 tensors on the CPU, got ",
              q.scalar_type(), " on ", q.device().str(), " (backend reference or auto runs any)");
  const bool needs_grad =
      torch::GradMode::is_enabled() &&
      (q.requires_grad() || k.requires_grad() || v.requires_grad() || W.requires_grad() ||
       f.requires_grad() || (h0.defined() && h0.requires_grad()));
  if (needs_grad) {
    auto out = M2rnnCpuFunction::apply(
        q, k, v, W, f, h0.defined() ? std::optional<Tensor>(h0) : std::nullopt, grad_clip);
    return {out[0], out[1]};
  }
  // Inference saves no states.
  KernelOutputs out = run_forward_kernel(s, KernelInputs(q, k, v, W, f, h0), false);
  return {out.y, out.h_final};
}

std::pair<Tensor, Tensor> recurrence_cuda(const Tensor& q, const Tensor& k, const Tensor& v,
                                          const Tensor& W, const Tensor& f, const Tensor& h0,
                                          double grad_clip, M2rnnBackend backend,
                                          int64_t state_checkpoint_every) {
#ifdef M2BENCH_HAVE_CUDA
  if (q.device().is_cuda())
    return m2rnn_recurrence_cuda(q, k, v, W, f, h0, grad_clip, backend == M2rnnBackend::Cublas,
                                 state_checkpoint_every);
  TORCH_CHECK(false, "m2rnn_recurrence: backend ", to_string(backend),
              " needs CUDA tensors, got tensors on ", q.device().str());
#else
  (void)k, (void)v, (void)W, (void)f, (void)h0, (void)grad_clip, (void)state_checkpoint_every;
  TORCH_CHECK(false, "m2rnn_recurrence: backend ", to_string(backend),
              " needs a build with CUDA; this one has none (tensors on ", q.device().str(),
              "). Use backend cpu, reference or auto");
#endif
}

M2rnnBackend resolve_auto(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& W,
                          const Tensor& f) {
#ifdef M2BENCH_HAVE_CUDA
  // Shapes the fused kernels do not take (K = 4, say) run the reference on the device.
  if (q.device().is_cuda())
    return m2rnn_cuda_supports(q, k, v, W, f) ? M2rnnBackend::Cuda : M2rnnBackend::Reference;
#else
  (void)k, (void)v, (void)W, (void)f;
#endif
  if (q.device().is_cpu() &&
      (q.scalar_type() == torch::kFloat32 || q.scalar_type() == torch::kFloat64))
    return M2rnnBackend::Cpu;
  return M2rnnBackend::Reference;
}

}  // namespace

std::pair<Tensor, Tensor> m2rnn_recurrence(const Tensor& q, const Tensor& k, const Tensor& v,
                                           const Tensor& W, const Tensor& f, const Tensor& h0,
                                           double grad_clip, M2rnnBackend backend,
                                           int64_t state_checkpoint_every) {
  const M2rnnShape s = check_m2rnn_inputs(q, k, v, W, f, h0);
  if (backend == M2rnnBackend::Auto) backend = resolve_auto(q, k, v, W, f);
  switch (backend) {
    case M2rnnBackend::Reference: return recurrence_reference(s, q, k, v, W, f, h0, grad_clip);
    case M2rnnBackend::Cpu: return recurrence_cpu(s, q, k, v, W, f, h0, grad_clip);
    case M2rnnBackend::Cuda:
    case M2rnnBackend::Cublas:
      return recurrence_cuda(q, k, v, W, f, h0, grad_clip, backend, state_checkpoint_every);
    case M2rnnBackend::Auto: break;
  }
  throw std::logic_error("m2rnn_recurrence: unresolved backend");
}

}  // namespace m2b::models
