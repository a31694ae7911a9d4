#include "kernels/m2rnn_naive.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace m2b::kernels {
namespace {

// Element i of the (b, t, head) row of a strided (B, S, heads, inner) input.
template <typename T>
double input_at(const T* x, const SeqStrides& st, int64_t b, int64_t t, int64_t head, int64_t i) {
  return static_cast<double>(x[b * st.b + t * st.s + head * st.h + i]);
}

// One chain (b, n) run forward, keeping H_0..H_S and Z_1..Z_S, each K x V row-major.
template <typename T>
struct NaiveChain {
  const M2rnnForward<T>& p;
  int64_t b, n, K, V, S;
  int64_t hq, hk, hv, hw, hf;  // the input heads chain n reads
  std::vector<std::vector<double>> H, Z;

  NaiveChain(const M2rnnForward<T>& p_, int64_t b_, int64_t n_)
      : p(p_), b(b_), n(n_), K(p_.shape.K), V(p_.shape.V), S(p_.shape.S) {
    const M2rnnShape& s = p.shape;
    const int64_t N = s.N();
    hq = n / (N / s.Nq);
    hk = n / (N / s.Nk);
    hv = n / (N / s.Nv);
    hw = n / (N / s.Nw);
    hf = n / (N / s.Nf);
    H.assign(S + 1, std::vector<double>(K * V, 0.0));
    Z.assign(S + 1, std::vector<double>(K * V, 0.0));
    if (p.h0)
      for (int64_t e = 0; e < K * V; ++e) H[0][e] = p.h0[(b * N + n) * K * V + e];
    for (int64_t t = 1; t <= S; ++t) {
      const double f = f_at(t);
      for (int64_t i = 0; i < K; ++i)
        for (int64_t j = 0; j < V; ++j) {
          double a = k_at(t, i) * v_at(t, j);
          for (int64_t l = 0; l < V; ++l) a += H[t - 1][i * V + l] * W_at(l, j);
          Z[t][i * V + j] = std::tanh(a);
          H[t][i * V + j] = f * H[t - 1][i * V + j] + (1 - f) * Z[t][i * V + j];
        }
    }
  }
  // Step t counts from 1, as in the recurrence; the inputs' rows from 0.
  double q_at(int64_t t, int64_t i) const { return input_at(p.q, p.q_stride, b, t - 1, hq, i); }
  double k_at(int64_t t, int64_t i) const { return input_at(p.k, p.k_stride, b, t - 1, hk, i); }
  double v_at(int64_t t, int64_t j) const { return input_at(p.v, p.v_stride, b, t - 1, hv, j); }
  double f_at(int64_t t) const { return input_at(p.f, p.f_stride, b, t - 1, hf, 0); }
  double W_at(int64_t i, int64_t j) const { return p.W[(hw * V + i) * V + j]; }
};

}  // namespace

template <typename T>
void m2rnn_forward_naive(const M2rnnForward<T>& p) {
  const M2rnnShape& s = p.shape;
  s.validate();
  const int64_t N = s.N(), K = s.K, V = s.V;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t n = 0; n < N; ++n) {
      const NaiveChain<T> c(p, b, n);
      for (int64_t t = 1; t <= s.S; ++t)
        for (int64_t j = 0; j < V; ++j) {
          double y = 0;
          for (int64_t i = 0; i < K; ++i) y += c.q_at(t, i) * c.H[t][i * V + j];
          p.y[((b * s.S + t - 1) * N + n) * V + j] = static_cast<T>(y);
        }
      for (int64_t e = 0; e < K * V; ++e)
        p.h_final[(b * N + n) * K * V + e] = static_cast<T>(c.H[s.S][e]);
    }
}

template <typename T>
void m2rnn_backward_naive(const M2rnnBackward<T>& p) {
  const M2rnnShape& s = p.fwd.shape;
  s.validate();
  const int64_t B = s.B, S = s.S, N = s.N(), K = s.K, V = s.V;
  // Shared heads sum their chains' gradients, so accumulate in double, then store.
  std::vector<double> dq(B * S * s.Nq * K), dk(B * S * s.Nk * K), dv(B * S * s.Nv * V),
      dW(s.Nw * V * V), df(B * S * s.Nf);
  const double clip = p.grad_clip > 0 ? p.grad_clip : INFINITY;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < N; ++n) {
      const NaiveChain<T> c(p.fwd, b, n);
      // G: the gradient reaching H_t, first from beyond the last step.
      std::vector<double> G(K * V, 0.0), dA(K * V), G_prev(K * V);
      if (p.dh_final)
        for (int64_t e = 0; e < K * V; ++e) G[e] = p.dh_final[(b * N + n) * K * V + e];
      for (int64_t t = S; t >= 1; --t) {
        const double f = c.f_at(t);
        const T* dy = p.dy + ((b * S + t - 1) * N + n) * V;
        double df_t = 0;
        for (int64_t i = 0; i < K; ++i)
          for (int64_t j = 0; j < V; ++j) {
            const int64_t e = i * V + j;
            // y_t = q_t^T H_t adds q_t dy_t^T; the total reaching H_t is clipped as one.
            G[e] = std::clamp(G[e] + c.q_at(t, i) * dy[j], -clip, clip);
            dq[((b * S + t - 1) * s.Nq + c.hq) * K + i] += c.H[t][e] * dy[j];
            df_t += G[e] * (c.H[t - 1][e] - c.Z[t][e]);
            dA[e] = (1 - f) * G[e] * (1 - c.Z[t][e] * c.Z[t][e]);
          }
        df[(b * S + t - 1) * s.Nf + c.hf] += df_t;
        // A = H_{t-1} W + k v^T.
        for (int64_t i = 0; i < K; ++i)
          for (int64_t j = 0; j < V; ++j) {
            dk[((b * S + t - 1) * s.Nk + c.hk) * K + i] += dA[i * V + j] * c.v_at(t, j);
            dv[((b * S + t - 1) * s.Nv + c.hv) * V + j] += dA[i * V + j] * c.k_at(t, i);
            for (int64_t l = 0; l < V; ++l)
              dW[(c.hw * V + l) * V + j] += c.H[t - 1][i * V + l] * dA[i * V + j];
          }
        for (int64_t i = 0; i < K; ++i)
          for (int64_t l = 0; l < V; ++l) {
            double g = f * G[i * V + l];
            for (int64_t j = 0; j < V; ++j) g += dA[i * V + j] * c.W_at(l, j);
            G_prev[i * V + l] = g;
          }
        G.swap(G_prev);
      }
      if (p.dh0)
        for (int64_t e = 0; e < K * V; ++e) p.dh0[(b * N + n) * K * V + e] = static_cast<T>(G[e]);
    }
  const auto store = [](const std::vector<double>& from, T* to) {
    std::transform(from.begin(), from.end(), to, [](double x) { return static_cast<T>(x); });
  };
  store(dq, p.dq), store(dk, p.dk), store(dv, p.dv), store(dW, p.dW), store(df, p.df);
}

template void m2rnn_forward_naive<float>(const M2rnnForward<float>&);
template void m2rnn_forward_naive<double>(const M2rnnForward<double>&);
template void m2rnn_backward_naive<float>(const M2rnnBackward<float>&);
template void m2rnn_backward_naive<double>(const M2rnnBackward<double>&);

}  // namespace m2b::kernels
