#pragma once
// A random M2RNN problem for the GPU tests and benchmarks: inputs in double (rounded to the
// element type the GPU gets, so the oracle sees the same numbers), the CPU oracle's results, and
// device buffers for one backend run with outputs poisoned (NaN) before every run.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cuda/m2rnn_cuda.h"
#include "kernels/m2rnn.h"
#include "kernels/m2rnn_naive.h"

namespace m2b::testing {

namespace kc = m2b::kernels::cuda;

inline void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

template <typename T>
T to_elem(double x) {
  if constexpr (std::is_same_v<T, float>) return static_cast<float>(x);
  else return __float2bfloat16_rn(static_cast<float>(x));
}
template <typename T>
double from_elem(T x) {
  if constexpr (std::is_same_v<T, float>) return x;
  else return static_cast<double>(__bfloat162float(x));
}

// Device memory of n elements of T.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t n) : n_(n) {
    if (n) cuda_ok(cudaMalloc(&p_, n * sizeof(T)), "cudaMalloc");
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  ~DeviceArray() { cudaFree(p_); }
  T* get() const { return p_; }
  size_t size() const { return n_; }
  void upload(const std::vector<double>& x) {
    std::vector<T> h(x.size());
    for (size_t i = 0; i < x.size(); ++i) h[i] = to_elem<T>(x[i]);
    cuda_ok(cudaMemcpy(p_, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  std::vector<double> download() const {
    std::vector<T> h(n_);
    cuda_ok(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "download");
    std::vector<double> x(n_);
    for (size_t i = 0; i < n_; ++i) x[i] = from_elem<T>(h[i]);
    return x;
  }
  void poison() { cuda_ok(cudaMemset(p_, 0xff, n_ * sizeof(T)), "poison"); }  // all-ones: NaN

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

struct ProblemSpec {
  kernels::M2rnnShape shape;
  bool h0 = true, dh_final = true, fused_inputs = false;
  double grad_clip = 0;
  uint64_t seed = 1;
};

// ||a - b|| / ||b|| (||a - b|| when b is zero); infinity if a holds a NaN or infinity.
inline double rel_error(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return std::numeric_limits<double>::infinity();
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// The host side: inputs q, k, v, f as four strided views of one buffer `in` (one fused row per
// (b, t) when spec.fused_inputs, else four contiguous tensors), W, h0, dy, dh_final.
template <typename T>
class Problem {
 public:
  explicit Problem(const ProblemSpec& spec) : spec_(spec) {
    const auto& s = spec.shape;
    s.validate();
    N_ = s.N();
    const int64_t B = s.B, S = s.S, K = s.K, V = s.V;
    const int64_t widths[4] = {s.Nq * K, s.Nk * K, s.Nv * V, s.Nf};
    // A fused row of even width, as bf16 rows of q, k, v must start at even elements.
    int64_t offset = 0, D = widths[0] + widths[1] + widths[2] + widths[3];
    D += D % 2;
    for (int i = 0; i < 4; ++i) {
      if (spec.fused_inputs) views_[i] = {offset, {S * D, D, inner(i)}};
      else views_[i] = {offset, {S * widths[i], widths[i], inner(i)}};
      offset += spec.fused_inputs ? widths[i] : B * S * widths[i];
    }
    in_.assign(static_cast<size_t>(B * S * D), 0.0);
    std::mt19937_64 rng(spec.seed);
    std::uniform_real_distribution<double> u(-1, 1), uf(0.3, 0.99);
    auto rounded = [](double x) { return from_elem<T>(to_elem<T>(x)); };
    for (int i = 0; i < 4; ++i) {
      const int64_t width = inner(i);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < S; ++t)
          for (int64_t h = 0; h < heads(i); ++h)
            for (int64_t e = 0; e < width; ++e)
              in_[index(i, b, t, h) + e] =
                  rounded(i == 3 ? uf(rng) : u(rng) / std::sqrt(double(width)) * 2);
    }
    W_.resize(static_cast<size_t>(s.Nw * V * V));
    for (int64_t w = 0; w < s.Nw; ++w)
      for (int64_t l = 0; l < V; ++l)
        for (int64_t c = 0; c < V; ++c)
          W_[(w * V + l) * V + c] =
              rounded((l == c ? 0.5 : 0.0) + u(rng) * 0.8 / std::sqrt(double(V)));
    auto fill = [&](std::vector<double>& x, size_t n, double scale) {
      x.resize(n);
      for (auto& e : x) e = rounded(u(rng) * scale);
    };
    const size_t states = static_cast<size_t>(B * N_ * K * V);
    if (spec.h0) fill(h0_, states, 0.5);
    fill(dy_, static_cast<size_t>(B * S * N_ * V), 1.0);
    if (spec.dh_final) fill(dh_final_, states, 1.0);
  }

  const ProblemSpec& spec() const { return spec_; }
  int64_t N() const { return N_; }

  // The oracle's outputs, in double: of the CPU kernel, or of the naive loop that checks it.
  struct Result {
    std::map<std::string, std::vector<double>> out;
  };
  enum class Oracle { cpu, naive };
  Result oracle(Oracle which = Oracle::cpu) const {
    const auto& s = spec_.shape;
    const int64_t B = s.B, S = s.S, K = s.K, V = s.V;
    Result r;
    std::vector<double> checkpoints(
        static_cast<size_t>(B * N_ * kernels::m2rnn_cpu_checkpoint_count(S) * K * V));
    std::vector<double> candidates(static_cast<size_t>(B * N_ * S * K * V));
    auto& y = r.out["y"];
    auto& hf = r.out["h_final"];
    y.resize(static_cast<size_t>(B * S * N_ * V));
    hf.resize(static_cast<size_t>(B * N_ * K * V));
    kernels::M2rnnForward<double> p =
        forward_view<double>(in_.data(), W_.data(), h0_.empty() ? nullptr : h0_.data());
    p.y = y.data();
    p.h_final = hf.data();
    p.checkpoints = checkpoints.data();
    p.candidates = candidates.data();
    if (which == Oracle::naive) kernels::m2rnn_forward_naive<double>(p);
    else kernels::m2rnn_forward_cpu<double>(p);
    kernels::M2rnnBackward<double> g;
    g.fwd = p;
    g.grad_clip = spec_.grad_clip;
    g.dy = dy_.data();
    g.dh_final = dh_final_.empty() ? nullptr : dh_final_.data();
    for (const char* name : {"dq", "dk", "dv", "dW", "df", "dh0"})
      r.out[name].resize(grad_size(name));
    g.dq = r.out["dq"].data();
    g.dk = r.out["dk"].data();
    g.dv = r.out["dv"].data();
    g.dW = r.out["dW"].data();
    g.df = r.out["df"].data();
    g.dh0 = r.out["dh0"].data();
    if (which == Oracle::naive) kernels::m2rnn_backward_naive<double>(g);
    else kernels::m2rnn_backward_cpu<double>(g);
    return r;
  }

  // Device copies of the inputs and (poisoned) outputs of one run.
  struct Device {
    DeviceArray<T> in, W, h0, dy, dh_final, y, h_final, dq, dk, dv, dW, df, dh0;
    kernels::M2rnnForward<T> fwd;
    kernels::M2rnnBackward<T> bwd;
    std::map<std::string, const DeviceArray<T>*> outputs() const {
      return {{"y", &y},   {"h_final", &h_final}, {"dq", &dq}, {"dk", &dk},
              {"dv", &dv}, {"dW", &dW},           {"df", &df}, {"dh0", &dh0}};
    }
    void poison() {
      for (auto& [name, a] : outputs()) const_cast<DeviceArray<T>*>(a)->poison();
    }
  };
  Device upload() const {
    const auto& s = spec_.shape;
    Device d;
    auto up = [](DeviceArray<T>& a, const std::vector<double>& x) {
      a = DeviceArray<T>(x.size());
      a.upload(x);
    };
    up(d.in, in_);
    up(d.W, W_);
    up(d.h0, h0_);
    up(d.dy, dy_);
    up(d.dh_final, dh_final_);
    d.y = DeviceArray<T>(static_cast<size_t>(s.B * s.S * N_ * s.V));
    d.h_final = DeviceArray<T>(static_cast<size_t>(s.B * N_ * s.K * s.V));
    for (auto [a, name] : {std::pair{&d.dq, "dq"},
                           {&d.dk, "dk"},
                           {&d.dv, "dv"},
                           {&d.dW, "dW"},
                           {&d.df, "df"},
                           {&d.dh0, "dh0"}})
      *a = DeviceArray<T>(grad_size(name));
    d.fwd = forward_view<T>(d.in.get(), d.W.get(), h0_.empty() ? nullptr : d.h0.get());
    d.fwd.y = d.y.get();
    d.fwd.h_final = d.h_final.get();
    d.bwd.fwd = d.fwd;
    d.bwd.grad_clip = spec_.grad_clip;
    d.bwd.dy = d.dy.get();
    d.bwd.dh_final = dh_final_.empty() ? nullptr : d.dh_final.get();
    d.bwd.dq = d.dq.get();
    d.bwd.dk = d.dk.get();
    d.bwd.dv = d.dv.get();
    d.bwd.dW = d.dW.get();
    d.bwd.df = d.df.get();
    d.bwd.dh0 = d.dh0.get();
    d.poison();
    return d;
  }

 private:
  struct View {
    int64_t offset;
    kernels::SeqStrides stride;
  };
  int64_t heads(int i) const {
    const auto& s = spec_.shape;
    return i == 0 ? s.Nq : i == 1 ? s.Nk : i == 2 ? s.Nv : s.Nf;
  }
  int64_t inner(int i) const { return i == 3 ? 1 : i < 2 ? spec_.shape.K : spec_.shape.V; }
  size_t index(int i, int64_t b, int64_t t, int64_t h) const {
    const View& v = views_[i];
    return static_cast<size_t>(v.offset + b * v.stride.b + t * v.stride.s + h * v.stride.h);
  }
  size_t grad_size(const std::string& name) const {
    const auto& s = spec_.shape;
    const int64_t rows = s.B * s.S;
    if (name == "dq") return rows * s.Nq * s.K;
    if (name == "dk") return rows * s.Nk * s.K;
    if (name == "dv") return rows * s.Nv * s.V;
    if (name == "df") return rows * s.Nf;
    if (name == "dW") return s.Nw * s.V * s.V;
    return s.B * N_ * s.K * s.V;  // dh0
  }
  template <typename U>
  kernels::M2rnnForward<U> forward_view(const U* in, const U* W, const U* h0) const {
    kernels::M2rnnForward<U> p{};
    p.shape = spec_.shape;
    p.q = in + views_[0].offset, p.q_stride = views_[0].stride;
    p.k = in + views_[1].offset, p.k_stride = views_[1].stride;
    p.v = in + views_[2].offset, p.v_stride = views_[2].stride;
    p.f = in + views_[3].offset, p.f_stride = views_[3].stride;
    p.W = W;
    p.h0 = h0;
    return p;
  }

  ProblemSpec spec_;
  int64_t N_ = 0;
  View views_[4];
  std::vector<double> in_, W_, h0_, dy_, dh_final_;
};

}  // namespace m2b::testing
