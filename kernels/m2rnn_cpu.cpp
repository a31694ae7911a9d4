// The M2RNN recurrence on CPU: one (b, n) chain per OpenMP iteration (m2rnn_cpu_chain.h holds the
// loops). Gradients of shared heads and of W are written per chain and summed afterwards in a
// fixed order, which keeps the backward free of races and its result independent of the thread
// count.
#include <algorithm>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "kernels/m2rnn.h"
#include "kernels/m2rnn_cpu_internal.h"

#define M2RNN_CPU_ENTRY chain_kernels_baseline
#include "kernels/m2rnn_cpu_chain.h"
#undef M2RNN_CPU_ENTRY

namespace m2b::kernels {

int64_t M2rnnShape::N() const { return std::max({Nq, Nk, Nv, Nw, Nf}); }

void M2rnnShape::validate() const {
  const std::pair<const char*, int64_t> sizes[] = {{"B", B},   {"S", S},   {"K", K},
                                                   {"V", V},   {"Nq", Nq}, {"Nk", Nk},
                                                   {"Nv", Nv}, {"Nw", Nw}, {"Nf", Nf}};
  for (const auto& [name, value] : sizes)
    if (value <= 0)
      throw std::invalid_argument(std::string("M2rnnShape: ") + name + " must be positive, got " +
                                  std::to_string(value));
  const int64_t n = N();
  for (const auto& [name, value] : sizes)
    if (name[0] == 'N' && n % value != 0)
      throw std::invalid_argument(std::string("M2rnnShape: head count ") + name + " = " +
                                  std::to_string(value) + " must divide N = " + std::to_string(n) +
                                  " (the largest of Nq, Nk, Nv, Nw, Nf)");
}

namespace {

bool machine_has(CpuIsa isa) {
#if defined(__x86_64__)
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  switch (isa) {
    case CpuIsa::Baseline: return true;
    case CpuIsa::Avx2: return avx2;
    case CpuIsa::Avx512:
      return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq");
  }
  return false;
#else
  return isa == CpuIsa::Baseline;
#endif
}

std::atomic<CpuIsa>& isa_in_use() {
  static std::atomic<CpuIsa> isa{machine_has(CpuIsa::Avx512) ? CpuIsa::Avx512
                                 : machine_has(CpuIsa::Avx2) ? CpuIsa::Avx2
                                                             : CpuIsa::Baseline};
  return isa;
}

// The widest build allowed whose vectors tile a row of V elements: a row the AVX-512 build
// cannot tile (V = 8 floats, say) would take its scalar loops.
template <typename T>
ChainKernels<T> chain_kernels(int64_t V) {
#if defined(__x86_64__)
  const CpuIsa isa = isa_in_use().load();
  if (isa == CpuIsa::Avx512 && V * sizeof(T) % 64 == 0) return chain_kernels_avx512<T>(V);
  if (isa != CpuIsa::Baseline) return chain_kernels_avx2<T>(V);
#endif
  return chain_kernels_baseline<T>(V);
}

// Sums the per-chain slots (rows, N, inner) of `chains` into `out` (rows, heads, inner), head h
// taking chains h * N/heads .. (h+1) * N/heads - 1.
template <typename T>
void sum_shared_heads(const T* chains, int64_t rows, int64_t N, int64_t heads, int64_t inner,
                      T* out) {
  const int64_t group = N / heads;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h) {
      T* dst = out + (r * heads + h) * inner;
      std::fill(dst, dst + inner, T(0));
      for (int64_t n = h * group; n < (h + 1) * group; ++n) {
        const T* src = chains + (r * N + n) * inner;
        for (int64_t e = 0; e < inner; ++e) dst[e] += src[e];
      }
    }
}

// Uninitialised scratch of n elements that persists on the calling thread, grown as needed; Tag
// keeps apart buffers that are live at once on one thread. The backward's per-chain gradient
// slots run to megabytes: zero-filled vectors allocated afresh each call cost about 8% of a
// training step in page faults and memset.
template <typename T, int Tag>
T* thread_scratch(int64_t n) {
  thread_local std::unique_ptr<T[]> buffer;
  thread_local int64_t size = 0;
  if (n > size) {
    buffer.reset();
    buffer.reset(new T[static_cast<size_t>(n)]);
    size = n;
  }
  return buffer.get();
}

// The gradient of one input: chains write straight into `out` when no head is shared, else into
// scratch taken from `rest` (scratch_size elements, `rest` advancing past them), which finish()
// sums per shared head.
template <typename T>
class HeadGradient {
 public:
  HeadGradient(T* out, int64_t rows, int64_t N, int64_t heads, int64_t inner, T*& rest)
      : out_(out), scratch_(rest), rows_(rows), N_(N), heads_(heads), inner_(inner) {
    rest += scratch_size(rows, N, heads, inner);
  }
  static int64_t scratch_size(int64_t rows, int64_t N, int64_t heads, int64_t inner) {
    return heads < N ? rows * N * inner : 0;
  }
  T* chains() { return heads_ < N_ ? scratch_ : out_; }
  void finish() {
    if (heads_ < N_) sum_shared_heads(scratch_, rows_, N_, heads_, inner_, out_);
  }

 private:
  T *out_, *scratch_;
  int64_t rows_, N_, heads_, inner_;
};

}  // namespace

CpuIsa m2rnn_cpu_isa() { return isa_in_use().load(); }

bool m2rnn_cpu_has_isa(CpuIsa isa) { return machine_has(isa); }

void m2rnn_cpu_set_isa(CpuIsa isa) {
  if (!machine_has(isa))
    throw std::invalid_argument(std::string("m2rnn_cpu_set_isa: this machine lacks ") +
                                (isa == CpuIsa::Avx2 ? "AVX2 and FMA" : "AVX-512 F, VL and DQ"));
  isa_in_use().store(isa);
}

template <typename T>
void m2rnn_forward_cpu(const M2rnnForward<T>& p) {
  p.shape.validate();
  const int64_t B = p.shape.B, N = p.shape.N(), KV = p.shape.K * p.shape.V;
  const ChainKernels<T> kernels = chain_kernels<T>(p.shape.V);
#pragma omp parallel
  {
    T* const scratch = thread_scratch<T, 1>(kForwardScratchMatrices * KV);
#pragma omp for schedule(static)
    for (int64_t chain = 0; chain < B * N; ++chain)
      kernels.forward(p, chain / N, chain % N, scratch);
  }
}

template <typename T>
void m2rnn_backward_cpu(const M2rnnBackward<T>& p) {
  const M2rnnShape& s = p.fwd.shape;
  s.validate();
  if (!p.fwd.checkpoints || !p.fwd.candidates)
    throw std::invalid_argument(std::string("m2rnn_backward_cpu: fwd.") +
                                (p.fwd.checkpoints ? "candidates" : "checkpoints") +
                                " is null; the forward must save it for backward");
  const int64_t B = s.B, S = s.S, N = s.N(), K = s.K, V = s.V, VV = V * V;

  // One buffer holds W transposed, every chain's dW and the slots of shared-head gradients.
  auto shared = [&](int64_t heads, int64_t inner) {
    return HeadGradient<T>::scratch_size(B * S, N, heads, inner);
  };
  T* const W_t = thread_scratch<T, 0>(s.Nw * VV + B * N * VV + shared(s.Nq, K) + shared(s.Nk, K) +
                                      shared(s.Nv, V) + shared(s.Nf, 1));
  T* const dW_chains = W_t + s.Nw * VV;
  T* rest = dW_chains + B * N * VV;
  for (int64_t w = 0; w < s.Nw; ++w)
    for (int64_t l = 0; l < V; ++l)
      for (int64_t j = 0; j < V; ++j) W_t[w * VV + j * V + l] = p.fwd.W[w * VV + l * V + j];
  HeadGradient<T> dq(p.dq, B * S, N, s.Nq, K, rest), dk(p.dk, B * S, N, s.Nk, K, rest),
      dv(p.dv, B * S, N, s.Nv, V, rest), df(p.df, B * S, N, s.Nf, 1, rest);
  const ChainGradients<T> grads{dq.chains(), dk.chains(), dv.chains(), df.chains(), dW_chains, W_t};
  const ChainKernels<T> kernels = chain_kernels<T>(V);

#pragma omp parallel
  {
    T* const scratch = thread_scratch<T, 1>(kBackwardScratchMatrices * K * V);
#pragma omp for schedule(static)
    for (int64_t chain = 0; chain < B * N; ++chain)
      kernels.backward(p, grads, chain / N, chain % N, scratch);
  }
  dq.finish();
  dk.finish();
  dv.finish();
  df.finish();
  // dW of weight head w sums its chains over the batch.
  const int64_t group = N / s.Nw;
  std::fill(p.dW, p.dW + s.Nw * VV, T(0));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < N; ++n) {
      const T* src = dW_chains + (b * N + n) * VV;
      T* dst = p.dW + (n / group) * VV;
      for (int64_t e = 0; e < VV; ++e) dst[e] += src[e];
    }
}

template void m2rnn_forward_cpu<float>(const M2rnnForward<float>&);
template void m2rnn_forward_cpu<double>(const M2rnnForward<double>&);
template void m2rnn_backward_cpu<float>(const M2rnnBackward<float>&);
template void m2rnn_backward_cpu<double>(const M2rnnBackward<double>&);

}  // namespace m2b::kernels
