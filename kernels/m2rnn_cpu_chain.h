// The per-chain loops of the M2RNN recurrence on CPU: one (b, n) chain, plain loops over time.
// Included once by each build of them, m2rnn_cpu.cpp (baseline instruction set),
// m2rnn_cpu_avx2.cpp and m2rnn_cpu_avx512.cpp (under #pragma GCC target), with M2RNN_CPU_ENTRY
// naming that build's entry point. Everything else here has internal linkage and the file calls
// no library function templates, so the builds share no symbol that the linker could pick the
// wrong one of.
//
// All products are rows of V contiguous elements accumulated into registers: GCC's vector
// extension (M2RNN_CPU_VECTOR_BYTES wide, 32 unless the build says otherwise; lowered to SSE2
// halves in the baseline build) keeps the codegen predictable, which the auto-vectoriser was not
// for these tiny matrices.
#ifndef M2RNN_CPU_ENTRY
#error "define M2RNN_CPU_ENTRY before including m2rnn_cpu_chain.h"
#endif
#ifndef M2RNN_CPU_VECTOR_BYTES
#define M2RNN_CPU_VECTOR_BYTES 32
#endif

#include <cstdint>
#include <type_traits>

#include "kernels/m2rnn_cpu_internal.h"

// Returning wide vectors from the internal helpers below crosses no ABI boundary. (Not popped:
// GCC reports it where the templates are instantiated, at the end of the including file.)
#pragma GCC diagnostic ignored "-Wpsabi"

namespace m2b::kernels {
namespace {

// The sum of the lanes of a vector of B bytes, by halving: log2(lanes) adds.
template <typename T, int B>
struct LaneSum {
  typedef T vec __attribute__((vector_size(B)));
  static T sum(const vec& v) {
    if constexpr (B == 2 * sizeof(T)) {
      return v[0] + v[1];
    } else {
      typename LaneSum<T, B / 2>::vec lo, hi;
      __builtin_memcpy(&lo, &v, B / 2);
      __builtin_memcpy(&hi, reinterpret_cast<const char*>(&v) + B / 2, B / 2);
      return LaneSum<T, B / 2>::sum(lo + hi);
    }
  }
};

template <typename T>
struct Simd {
  typedef T vec __attribute__((vector_size(M2RNN_CPU_VECTOR_BYTES)));
  static constexpr int L = M2RNN_CPU_VECTOR_BYTES / sizeof(T);
  static vec load(const T* p) {
    vec v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(T* p, const vec& v) { __builtin_memcpy(p, &v, sizeof v); }
  static T sum(const vec& v) { return LaneSum<T, M2RNN_CPU_VECTOR_BYTES>::sum(v); }
};

// The same interface one element at a time, for rows that vectors do not tile.
template <typename T>
struct Scalar {
  typedef T vec;
  static constexpr int L = 1;
  static T load(const T* p) { return *p; }
  static void store(T* p, T v) { *p = v; }
  static T sum(T v) { return v; }
};

// Whether rows of VC elements take the vector path: a whole number of vectors, few enough to
// stay in registers.
template <int VC, typename T>
constexpr bool kVectorRows = VC > 0 && VC % Simd<T>::L == 0 && VC / Simd<T>::L <= 8;

// Vectors or scalars, whichever walk a row of VC elements.
template <int VC, typename T>
using RowLanes = std::conditional_t<kVectorRows<VC, T>, Simd<T>, Scalar<T>>;

// BR rows of gemm_rows, their accumulators held in registers across the whole sum.
template <int BR, int VC, typename T>
inline void gemm_rows_block(T* __restrict out, const T* __restrict C, int64_t c_row, int64_t c_col,
                            const T* __restrict X, int64_t count) {
  using S = Simd<T>;
  constexpr int R = VC / S::L;
  typename S::vec acc[BR][R];
#pragma GCC unroll 8
  for (int b = 0; b < BR; ++b)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[b][r] = S::load(out + b * VC + r * S::L);
  for (int64_t m = 0; m < count; ++m) {
    typename S::vec x[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) x[r] = S::load(X + m * VC + r * S::L);
#pragma GCC unroll 8
    for (int b = 0; b < BR; ++b) {
      const T c = C[b * c_row + m * c_col];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[b][r] += c * x[r];
    }
  }
#pragma GCC unroll 8
  for (int b = 0; b < BR; ++b)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) S::store(out + b * VC + r * S::L, acc[b][r]);
}

// out (rows x V) += C (rows x count) X (count x V), where C's element (o, m) is
// C[o * c_row + m * c_col] and out, X have row stride V. Each product of the recurrence has this
// shape (H W, dA W^T, H^T dA, q^T H, k^T dA).
template <int VC, typename T>
void gemm_rows(T* __restrict out, int64_t rows, const T* __restrict C, int64_t c_row, int64_t c_col,
               const T* __restrict X, int64_t count, int64_t V) {
  if constexpr (kVectorRows<VC, T>) {
    // Eight independent accumulators (rows x vectors) hide the FMA latency.
    constexpr int R = VC / Simd<T>::L;
    constexpr int BR = R >= 8 ? 1 : 8 / R;
    const int64_t blocked = rows / BR * BR;
    for (int64_t o = 0; o < blocked; o += BR)
      gemm_rows_block<BR, VC>(out + o * VC, C + o * c_row, c_row, c_col, X, count);
    for (int64_t o = blocked; o < rows; ++o)
      gemm_rows_block<1, VC>(out + o * VC, C + o * c_row, c_row, c_col, X, count);
  } else {
    for (int64_t o = 0; o < rows; ++o)
      for (int64_t m = 0; m < count; ++m) {
        const T c = C[o * c_row + m * c_col];
        for (int64_t j = 0; j < V; ++j) out[o * V + j] += c * X[m * V + j];
      }
  }
}

template <typename T>
inline void copy(const T* src, int64_t n, T* dst) {
  __builtin_memcpy(dst, src, n * sizeof(T));
}

template <typename T>
inline void fill_zero(T* x, int64_t n) {
  for (int64_t e = 0; e < n; ++e) x[e] = T(0);
}

// x clamped to [-c, c]; for scalars and vectors alike, NaN staying NaN. Written as two selects:
// GCC does not if-convert the nested form under its default -ftrapping-math. Where the build
// names min and max of its float vectors (M2RNN_CPU_MIN_PS, M2RNN_CPU_MAX_PS, each returning the
// second operand when unordered), they replace the selects, which GCC emits as compare and blend:
// twice the instructions, in the tanh and the backward's per-element pass, both FMA-bound.
template <typename X, typename T>
inline X clamp_symmetric(const X& x, T c) {
  const X hi = X{} + c, lo = -hi;
#ifdef M2RNN_CPU_MIN_PS
  if constexpr (std::is_same_v<X, Simd<float>::vec>)
    return M2RNN_CPU_MIN_PS(hi, M2RNN_CPU_MAX_PS(lo, x));
#endif
  const X above_lo = x < lo ? lo : x;
  return above_lo > hi ? hi : above_lo;
}

// x[e] = fn(x[e]) with fn applied to whole vectors, then to the scalar tail.
template <typename T, typename Fn>
inline void map_inplace(T* x, int64_t n, Fn fn) {
  using S = Simd<T>;
  int64_t e = 0;
  for (; e + S::L <= n; e += S::L) S::store(x + e, fn(S::load(x + e)));
  for (; e < n; ++e) x[e] = fn(x[e]);
}

// tanh for float: Eigen's rational minimax approximation (odd, degree 13/6, a few ulp; XLA and
// ONNX Runtime use it too). libm's tanhf does not vectorise and dominated the run time. double,
// the oracle's precision, keeps libm.
template <typename X>
inline X tanh_rational(const X& x_in) {
  // Beyond the clamp tanh rounds to +-1 in float; the clamp also keeps x^13 finite.
  const X x = clamp_symmetric(x_in, 7.90531110763549805f);
  const X x2 = x * x;
  X p = X{} + -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  X q = X{} + 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  return x * p / q;
}

inline void tanh_inplace(float* x, int64_t n) {
  map_inplace(x, n, [](const auto& e) { return tanh_rational(e); });
}
inline void tanh_inplace(double* __restrict x, int64_t n) {
  for (int64_t e = 0; e < n; ++e) x[e] = __builtin_tanh(x[e]);
}

// out = a b^T (a of length K, b of length V).
template <int VC, typename T>
inline void outer(T* __restrict out, const T* __restrict a, const T* __restrict b, int64_t K,
                  int64_t V) {
  if constexpr (kVectorRows<VC, T>) {
    using S = Simd<T>;
    constexpr int R = VC / S::L;
    typename S::vec bv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) bv[r] = S::load(b + r * S::L);
    for (int64_t i = 0; i < K; ++i)
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) S::store(out + i * VC + r * S::L, a[i] * bv[r]);
  } else {
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j < V; ++j) out[i * V + j] = a[i] * b[j];
  }
}

// The inputs chain (b, n) reads at step 0; step t is t * *_step further on.
template <typename T>
struct Chain {
  const T *q, *k, *v, *W, *f, *h0;  // h0 nullptr: zeros
  int64_t q_step, k_step, v_step, f_step;
};

template <typename T>
Chain<T> chain_inputs(const M2rnnForward<T>& p, int64_t b, int64_t n) {
  const M2rnnShape& s = p.shape;
  const int64_t N = s.N();
  auto head = [&](int64_t count) { return n / (N / count); };
  Chain<T> c;
  c.q = p.q + b * p.q_stride.b + head(s.Nq) * p.q_stride.h;
  c.k = p.k + b * p.k_stride.b + head(s.Nk) * p.k_stride.h;
  c.v = p.v + b * p.v_stride.b + head(s.Nv) * p.v_stride.h;
  c.f = p.f + b * p.f_stride.b + head(s.Nf) * p.f_stride.h;
  c.W = p.W + head(s.Nw) * s.V * s.V;
  c.h0 = p.h0 ? p.h0 + (b * N + n) * s.K * s.V : nullptr;
  c.q_step = p.q_stride.s;
  c.k_step = p.k_stride.s;
  c.v_step = p.v_stride.s;
  c.f_step = p.f_stride.s;
  return c;
}

// Z = tanh(H W + k v^T)
template <int VC, typename T>
void candidate(const T* __restrict H, const T* __restrict W, const T* __restrict k,
               const T* __restrict v, int64_t K, int64_t V, T* __restrict Z) {
  outer<VC>(Z, k, v, K, V);
  gemm_rows<VC>(Z, K, H, V, 1, W, V, V);
  tanh_inplace(Z, K * V);
}

// H = f H_prev + (1 - f) Z over n elements. H may be H_prev (the forward updates in place).
template <typename T>
inline void update(const T* H_prev, const T* __restrict Z, T f, int64_t n, T* H) {
  const T g = T(1) - f;
  for (int64_t e = 0; e < n; ++e) H[e] = f * H_prev[e] + g * Z[e];
}

// One step from H_prev: Z = tanh(H_prev W + k_t v_t^T), H = f_t H_prev + (1 - f_t) Z. H may be
// H_prev.
template <int VC, typename T>
void step(const T* H_prev, const Chain<T>& c, int64_t t, int64_t K, int64_t V, T* __restrict Z,
          T* H) {
  candidate<VC>(H_prev, c.W, c.k + t * c.k_step, c.v + t * c.v_step, K, V, Z);
  update(H_prev, Z, c.f[t * c.f_step], K * V, H);
}

template <int VC, typename T>
void forward_chain(const M2rnnForward<T>& p, int64_t b, int64_t n, T* scratch) {
  const M2rnnShape& s = p.shape;
  const int64_t N = s.N(), S = s.S, K = s.K, V = VC ? VC : s.V, KV = K * V;
  const Chain<T> c = chain_inputs(p, b, n);
  T* __restrict H = scratch;
  T* __restrict checkpoints =
      p.checkpoints ? p.checkpoints + (b * N + n) * m2rnn_cpu_checkpoint_count(S) * KV : nullptr;
  // Training keeps every candidate; inference overwrites one in scratch.
  T* __restrict candidates = p.candidates ? p.candidates + (b * N + n) * S * KV : scratch + KV;
  const int64_t candidate_step = p.candidates ? KV : 0;
  if (c.h0) copy(c.h0, KV, H);
  else fill_zero(H, KV);
  for (int64_t t = 0; t < S; ++t) {
    if (checkpoints && t % kCpuCheckpointEvery == 0)
      copy(H, KV, checkpoints + t / kCpuCheckpointEvery * KV);
    step<VC>(H, c, t, K, V, candidates + t * candidate_step, H);
    T* __restrict y = p.y + ((b * S + t) * N + n) * V;
    fill_zero(y, V);
    gemm_rows<VC>(y, 1, c.q + t * c.q_step, 0, 1, H, K, V);
  }
  copy(H, KV, p.h_final + (b * N + n) * KV);
}

// G_t = q_t dy_t^T + carry_{t+1} (clipped);  dq_t = H_t dy_t;  dA = (1 - f) G (1 - Z^2);
// df_t = sum G (H_{t-1} - Z);  dW += H_{t-1}^T dA;  dk_t = dA v_t;  dv_t = dA^T k_t;
// carry_t = f G + dA W^T;  dh0 = carry_1.
template <int VC, typename T>
void backward_chain(const M2rnnBackward<T>& p, const ChainGradients<T>& g, int64_t b, int64_t n,
                    T* scratch) {
  const M2rnnForward<T>& fp = p.fwd;
  const M2rnnShape& s = fp.shape;
  const int64_t N = s.N(), S = s.S, K = s.K, V = VC ? VC : s.V, KV = K * V;
  const Chain<T> c = chain_inputs(fp, b, n);
  const T* __restrict W_t = g.W_t + n / (N / s.Nw) * V * V;
  T* __restrict dW = g.dW + (b * N + n) * V * V;
  T* __restrict dA = scratch;
  T* __restrict carry = scratch + KV;
  // One chunk's states (H_t at slot t - t0), rebuilt from its checkpoint and the candidates.
  T* __restrict states = scratch + 2 * KV;
  const int64_t chunks = m2rnn_cpu_checkpoint_count(S);
  const T* __restrict checkpoints = fp.checkpoints + (b * N + n) * chunks * KV;
  const T* __restrict candidates = fp.candidates + (b * N + n) * S * KV;
  fill_zero(dW, V * V);
  if (p.dh_final) copy(p.dh_final + (b * N + n) * KV, KV, carry);
  else fill_zero(carry, KV);
  // No clipping is clipping at infinity.
  const T clip = p.grad_clip > 0 ? static_cast<T>(p.grad_clip) : static_cast<T>(__builtin_inf());

  for (int64_t chunk = chunks - 1; chunk >= 0; --chunk) {
    const int64_t t0 = chunk * kCpuCheckpointEvery;
    const int64_t t1 = t0 + kCpuCheckpointEvery < S ? t0 + kCpuCheckpointEvery : S;
    const T* __restrict H_start = checkpoints + chunk * KV;
    for (int64_t t = t0; t < t1; ++t)
      update(t == t0 ? H_start : states + (t - t0 - 1) * KV, candidates + t * KV, c.f[t * c.f_step],
             KV, states + (t - t0) * KV);
    for (int64_t t = t1 - 1; t >= t0; --t) {
      const T* __restrict H = states + (t - t0) * KV;
      const T* __restrict H_prev = t == t0 ? H_start : H - KV;
      const T* __restrict Z = candidates + t * KV;
      const T* __restrict q = c.q + t * c.q_step;
      const T* __restrict k = c.k + t * c.k_step;
      const T* __restrict v = c.v + t * c.v_step;
      const T* __restrict dy = p.dy + ((b * S + t) * N + n) * V;
      const int64_t slot = (b * S + t) * N + n;
      const T f = c.f[t * c.f_step];
      // One pass over the state. G is everything reaching H_t, from y_t and from step t+1,
      // clipped as one; the carry keeps its f G part until dA W^T joins it below.
      using Ln = RowLanes<VC, T>;
      typename Ln::vec df{};
      for (int64_t i = 0; i < K; ++i) {
        typename Ln::vec dq_i{}, dk_i{};
        for (int64_t j = 0; j < V; j += Ln::L) {
          const int64_t e = i * V + j;
          const auto dy_j = Ln::load(dy + j);
          const auto G = clamp_symmetric(Ln::load(carry + e) + q[i] * dy_j, clip);
          const auto Z_e = Ln::load(Z + e);
          dq_i += Ln::load(H + e) * dy_j;
          df += G * (Ln::load(H_prev + e) - Z_e);
          const auto a = (T(1) - f) * G * (T(1) - Z_e * Z_e);
          Ln::store(dA + e, a);
          dk_i += a * Ln::load(v + j);
          Ln::store(carry + e, f * G);
        }
        g.dq[slot * K + i] = Ln::sum(dq_i);
        g.dk[slot * K + i] = Ln::sum(dk_i);
      }
      g.df[slot] = Ln::sum(df);

      T* __restrict dv = g.dv + slot * V;
      fill_zero(dv, V);
      gemm_rows<VC>(dv, 1, k, 0, 1, dA, K, V);
      gemm_rows<VC>(dW, V, H_prev, 1, V, dA, K, V);
      gemm_rows<VC>(carry, K, dA, V, 1, W_t, V, V);
    }
  }
  if (p.dh0) copy(carry, KV, p.dh0 + (b * N + n) * KV);
}

template <int VC, typename T>
ChainKernels<T> kernels_for() {
  return {&forward_chain<VC, T>, &backward_chain<VC, T>};
}

}  // namespace

template <typename T>
ChainKernels<T> M2RNN_CPU_ENTRY(int64_t V) {
  switch (V) {
    case 8: return kernels_for<8, T>();
    case 16: return kernels_for<16, T>();
    case 32: return kernels_for<32, T>();
    case 64: return kernels_for<64, T>();
    default: return kernels_for<0, T>();
  }
}

template ChainKernels<float> M2RNN_CPU_ENTRY<float>(int64_t);
template ChainKernels<double> M2RNN_CPU_ENTRY<double>(int64_t);

}  // namespace m2b::kernels
