// LibTorch autograd function over the torch-free CUDA kernels of kernels/cuda/m2rnn_cuda.h.
// Training runs save only the fused forward's checkpoints (or, for cuBLAS, every state) and the
// inputs; inference (no grad needed) calls the forward alone and saves nothing.
#include "models/ops/m2rnn_cuda_binding.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "kernels/cuda/m2rnn_cuda.h"

namespace m2b::models {

namespace {

namespace kc = m2b::kernels::cuda;
using kernels::M2rnnBackward;
using kernels::M2rnnForward;
using kernels::M2rnnShape;
using kernels::SeqStrides;

template <typename T>
T* ptr(const torch::Tensor& t) {
  return t.defined() ? reinterpret_cast<T*>(t.data_ptr()) : nullptr;
}

// q, k, v need a contiguous last dimension, and in bf16 rows that start at even elements (the
// kernels copy them 4 bytes at a time); other strides pass through.
torch::Tensor kernel_rows(const torch::Tensor& t) {
  bool ok = t.stride(-1) == 1;
  if (t.scalar_type() == torch::kBFloat16)
    ok = ok && reinterpret_cast<uintptr_t>(t.data_ptr()) % 4 == 0 && t.stride(0) % 2 == 0 &&
         t.stride(1) % 2 == 0 && t.stride(2) % 2 == 0;
  return ok ? t : t.clone(torch::MemoryFormat::Contiguous);
}

void check_cuda_inputs(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                       const torch::Tensor& W, const torch::Tensor& f, const torch::Tensor& h0) {
  const auto dtype = q.scalar_type();
  TORCH_CHECK(dtype == torch::kFloat32 || dtype == torch::kBFloat16,
              "m2rnn_recurrence_cuda: dtype must be float32 or bfloat16, got ", dtype);
  const std::pair<const char*, const torch::Tensor*> all[] = {{"q", &q}, {"k", &k}, {"v", &v},
                                                              {"W", &W}, {"f", &f}, {"h0", &h0}};
  const int64_t dims[] = {4, 4, 4, 3, 3, 4};
  for (int i = 0; i < 6; ++i) {
    const auto& [name, t] = all[i];
    if (!t->defined()) continue;
    TORCH_CHECK(t->is_cuda() && t->device() == q.device() && t->scalar_type() == dtype &&
                    t->dim() == dims[i],
                "m2rnn_recurrence_cuda: ", name, " must be a ", dims[i], "-d ", dtype,
                " tensor on ", q.device().str(), ", got ", t->toString(), " of ", t->dim(),
                " dims on ", t->device().str());
  }
}

// Runs fn; the kernels and their shape checks, torch-free, reject arguments with
// std::invalid_argument, which leaves this op as a TORCH_CHECK error (`prefix` and the message)
// like the binding's own checks.
template <typename Fn>
void torch_checked(const char* prefix, Fn&& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK(false, prefix, e.what());
  }
}

M2rnnShape m2rnn_shape_of(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          const torch::Tensor& W, const torch::Tensor& f) {
  M2rnnShape s;
  s.B = q.size(0), s.S = q.size(1), s.Nq = q.size(2), s.K = q.size(3);
  s.Nk = k.size(2), s.Nv = v.size(2), s.V = v.size(3), s.Nw = W.size(0), s.Nf = f.size(2);
  torch_checked("m2rnn_recurrence_cuda: ", [&] { s.validate(); });
  const bool consistent = k.size(0) == s.B && k.size(1) == s.S && k.size(3) == s.K &&
                          v.size(0) == s.B && v.size(1) == s.S && W.size(1) == s.V &&
                          W.size(2) == s.V && f.size(0) == s.B && f.size(1) == s.S;
  TORCH_CHECK(consistent, "m2rnn_recurrence_cuda: inconsistent shapes q ", q.sizes(), ", k ",
              k.sizes(), ", v ", v.sizes(), ", W ", W.sizes(), ", f ", f.sizes(),
              "; expected (B,S,Nq,K), (B,S,Nk,K), (B,S,Nv,V), (Nw,V,V), (B,S,Nf)");
  return s;
}

template <typename T>
M2rnnForward<T> forward_params(const M2rnnShape& s, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& W,
                               const torch::Tensor& f, const torch::Tensor& h0,
                               const torch::Tensor& y, const torch::Tensor& h_final) {
  M2rnnForward<T> p{};
  p.shape = s;
  auto strides = [](const torch::Tensor& t) {
    return SeqStrides{t.stride(0), t.stride(1), t.stride(2)};
  };
  p.q = ptr<T>(q), p.q_stride = strides(q);
  p.k = ptr<T>(k), p.k_stride = strides(k);
  p.v = ptr<T>(v), p.v_stride = strides(v);
  p.f = ptr<T>(f), p.f_stride = strides(f);
  p.W = ptr<T>(W);
  p.h0 = ptr<T>(h0);
  p.y = ptr<T>(y);
  p.h_final = ptr<T>(h_final);
  return p;
}

// Calls fn.template operator()<T>() with the kernels' element type of `dtype`. Every kernel call
// goes through here.
template <typename Fn>
void with_type(torch::ScalarType dtype, Fn&& fn) {
  torch_checked("", [&] {
    if (dtype == torch::kBFloat16) fn(kc::bf16{});
    else fn(float{});
  });
}

kc::M2rnnCudaOptions cuda_options(int64_t state_checkpoint_every) {
  kc::M2rnnCudaOptions o;
  o.state_checkpoint_every = state_checkpoint_every;
  return o;
}

torch::Tensor bytes(size_t n, const torch::Tensor& like) {
  return torch::empty({static_cast<int64_t>(n)}, like.options().dtype(torch::kUInt8));
}

// Runs the forward; `saved` receives what the backward needs (checkpoints or every state) when
// `training`.
torch::Tensor run_forward(const M2rnnShape& s, const torch::Tensor& q, const torch::Tensor& k,
                          const torch::Tensor& v, const torch::Tensor& W, const torch::Tensor& f,
                          const torch::Tensor& h0, bool cublas, const kc::M2rnnCudaOptions& o,
                          bool training, torch::Tensor& y, torch::Tensor& h_final) {
  const int64_t N = s.N();
  y = torch::empty({s.B, s.S, N, s.V}, q.options());
  h_final = torch::empty({s.B, N, s.K, s.V}, q.options());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  torch::Tensor saved;
  with_type(q.scalar_type(), [&](auto tag) {
    using T = decltype(tag);
    const M2rnnForward<T> p = forward_params<T>(s, q, k, v, W, f, h0, y, h_final);
    if (cublas) {
      saved = bytes(kc::m2rnn_cublas_states_bytes(s), q);
      const torch::Tensor ws = bytes(kc::m2rnn_cublas_workspace_bytes<T>(s), q);
      kc::m2rnn_cublas_forward<T>(p, ptr<float>(saved), ws.data_ptr(), ws.numel(),
                                  at::cuda::getCurrentCUDABlasHandle(), stream);
    } else {
      if (training) saved = bytes(kc::m2rnn_checkpoint_bytes(s, o), q);
      kc::m2rnn_fused_forward<T>(p, o, training ? ptr<float>(saved) : nullptr, stream);
    }
  });
  return saved;
}

class M2rnnFunction : public torch::autograd::Function<M2rnnFunction> {
 public:
  // An absent h0 travels as nullopt: autograd functions take no undefined tensors.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                torch::Tensor q, torch::Tensor k, torch::Tensor v,
                                                torch::Tensor W, torch::Tensor f,
                                                const std::optional<torch::Tensor>& h0_given,
                                                double grad_clip, bool cublas,
                                                int64_t state_checkpoint_every) {
    const torch::Tensor h0 = h0_given.value_or(torch::Tensor());
    const M2rnnShape s = m2rnn_shape_of(q, k, v, W, f);
    torch::Tensor y, h_final;
    const torch::Tensor saved = run_forward(s, q, k, v, W, f, h0, cublas,
                                            cuda_options(state_checkpoint_every), true, y, h_final);
    ctx->save_for_backward({q, k, v, W, f, h0, saved});
    ctx->saved_data["grad_clip"] = grad_clip;
    ctx->saved_data["cublas"] = cublas;
    ctx->saved_data["state_checkpoint_every"] = state_checkpoint_every;
    return {y, h_final};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &W = saved[3], &f = saved[4],
                        &h0 = saved[5], &states = saved[6];
    const bool cublas = ctx->saved_data["cublas"].toBool();
    const M2rnnShape s = m2rnn_shape_of(q, k, v, W, f);
    const int64_t N = s.N();
    const torch::Tensor dy =
        grads[0].defined() ? grads[0].contiguous() : torch::zeros({s.B, s.S, N, s.V}, q.options());
    const torch::Tensor dh_final = grads[1].defined() ? grads[1].contiguous() : torch::Tensor();
    torch::Tensor dq = torch::empty({s.B, s.S, s.Nq, s.K}, q.options()),
                  dk = torch::empty({s.B, s.S, s.Nk, s.K}, q.options()),
                  dv = torch::empty({s.B, s.S, s.Nv, s.V}, q.options()),
                  dW = torch::empty({s.Nw, s.V, s.V}, q.options()),
                  df = torch::empty({s.B, s.S, s.Nf}, q.options()),
                  dh0 = h0.defined() ? torch::empty_like(h0) : torch::Tensor();
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    with_type(q.scalar_type(), [&](auto tag) {
      using T = decltype(tag);
      M2rnnBackward<T> p{};
      p.fwd = forward_params<T>(s, q, k, v, W, f, h0, torch::Tensor(), torch::Tensor());
      p.grad_clip = ctx->saved_data["grad_clip"].toDouble();
      p.dy = ptr<T>(dy);
      p.dh_final = ptr<T>(dh_final);
      p.dq = ptr<T>(dq), p.dk = ptr<T>(dk), p.dv = ptr<T>(dv), p.dW = ptr<T>(dW), p.df = ptr<T>(df);
      p.dh0 = ptr<T>(dh0);
      if (cublas) {
        const torch::Tensor ws = bytes(kc::m2rnn_cublas_workspace_bytes<T>(s), q);
        kc::m2rnn_cublas_backward<T>(p, ptr<float>(states), ws.data_ptr(), ws.numel(),
                                     at::cuda::getCurrentCUDABlasHandle(), stream);
      } else {
        const kc::M2rnnCudaOptions o =
            cuda_options(ctx->saved_data["state_checkpoint_every"].toInt());
        const torch::Tensor ws = bytes(kc::m2rnn_fused_backward_workspace_bytes<T>(s, o), q);
        kc::m2rnn_fused_backward<T>(p, o, ptr<float>(states), ws.data_ptr(), ws.numel(), stream);
      }
    });
    return {dq, dk, dv, dW, df, dh0, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

std::pair<torch::Tensor, torch::Tensor> m2rnn_recurrence_cuda(
    const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& W,
    const torch::Tensor& f, const torch::Tensor& h0, double grad_clip, bool cublas,
    int64_t state_checkpoint_every) {
  check_cuda_inputs(q, k, v, W, f, h0);
  const c10::cuda::CUDAGuard guard(q.device());
  const torch::Tensor qc = kernel_rows(q), kc_ = kernel_rows(k), vc = kernel_rows(v),
                      Wc = W.contiguous(), hc = h0.defined() ? h0.contiguous() : h0;
  const bool needs_grad =
      torch::GradMode::is_enabled() &&
      (q.requires_grad() || k.requires_grad() || v.requires_grad() || W.requires_grad() ||
       f.requires_grad() || (h0.defined() && h0.requires_grad()));
  if (!needs_grad) {
    torch::Tensor y, h_final;
    run_forward(m2rnn_shape_of(qc, kc_, vc, Wc, f), qc, kc_, vc, Wc, f, hc, cublas,
                cuda_options(state_checkpoint_every), false, y, h_final);
    return {y, h_final};
  }
  auto out = M2rnnFunction::apply(qc, kc_, vc, Wc, f,
                                  hc.defined() ? std::optional<torch::Tensor>(hc) : std::nullopt,
                                  grad_clip, cublas, state_checkpoint_every);
  return {out[0], out[1]};
}

bool m2rnn_cuda_supports(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                         const torch::Tensor& W, const torch::Tensor& f) {
  const auto dtype = q.scalar_type();
  if (!q.is_cuda() || (dtype != torch::kFloat32 && dtype != torch::kBFloat16)) return false;
  try {
    const M2rnnShape s = m2rnn_shape_of(q, k, v, W, f);
    with_type(dtype,
              [&](auto tag) { kc::m2rnn_fused_check<decltype(tag)>(s, kc::M2rnnCudaOptions{}); });
    return true;
  } catch (const c10::Error&) {
    return false;
  }
}

}  // namespace m2b::models
