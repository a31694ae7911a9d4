#pragma once
// The M2RNN recurrence, torch-free: raw pointers, element strides, one CPU implementation that
// is the oracle for the CUDA ones (and is tested against the naive loop of m2rnn_naive.h).
// Per batch b and head n (H is K x V, W is V x V):
//   Z_t = tanh(H_{t-1} W + k_t v_t^T)
//   H_t = f_t H_{t-1} + (1 - f_t) Z_t
//   y_t = q_t^T H_t
// Heads: q has Nq heads, k Nk, v Nv, W Nw, f Nf; N = max of them, each divides N; head n reads
// q head n / (N / Nq), and likewise for the others.
#include <cstdint>

namespace m2b::kernels {

struct M2rnnShape {
  int64_t B = 0, S = 0, K = 0, V = 0;
  int64_t Nq = 1, Nk = 1, Nv = 1, Nw = 1, Nf = 1;
  int64_t N() const;  // the largest head count
  // Throws std::invalid_argument naming the offending field when a size is not positive or a
  // head count does not divide N.
  void validate() const;
};

// Element strides of a (B, S, heads, inner) tensor; the inner dimension is contiguous. Letting
// q, k, v and f be strided views lets the layer pass slices of its fused input projection.
struct SeqStrides {
  int64_t b = 0, s = 0, h = 0;
};

// Gradient clipping c > 0 clamps the gradient reaching each H_t (t = 1..S, from y_t and from
// step t+1 together) to [-c, c] before it flows further back; c <= 0 disables it. The gradient
// flowing into h0 is the one step 1 passes back, not clamped itself.
constexpr int64_t kCpuCheckpointEvery = 16;
inline int64_t m2rnn_cpu_checkpoint_count(int64_t S) {
  return (S + kCpuCheckpointEvery - 1) / kCpuCheckpointEvery;
}

template <typename T>
struct M2rnnForward {
  M2rnnShape shape;
  // Not formatted: each input beside its strides.
  // clang-format off
  const T* q; SeqStrides q_stride;  // (B, S, Nq, K)
  const T* k; SeqStrides k_stride;  // (B, S, Nk, K)
  const T* v; SeqStrides v_stride;  // (B, S, Nv, V)
  const T* W;                       // (Nw, V, V), contiguous
  const T* f; SeqStrides f_stride;  // (B, S, Nf), f_stride.h is the head stride
  const T* h0 = nullptr;            // (B, N, K, V), contiguous; nullptr means zeros
  T* y;                             // (B, S, N, V), contiguous
  T* h_final;                       // (B, N, K, V), contiguous
  // clang-format on
  // Training on the CPU (both nullptr for inference; the CUDA kernels take their own checkpoints
  // and need them null): the state before every kCpuCheckpointEvery-th step (H_0, H_C, H_2C,
  // ...), (B, N, m2rnn_cpu_checkpoint_count(S), K, V), and every step's candidate Z_t,
  // (B, N, S, K, V), both contiguous. The backward rebuilds each chunk's states from its
  // checkpoint and the saved candidates, H_t = f_t H_{t-1} + (1 - f_t) Z_t, into scratch that
  // stays in cache. Recomputing the candidates too (their product and tanh) cost more than
  // saving them: B32 S64 K16 V16 on 1 AVX2 core, a training step took 6.1 ms that way and 4.8 ms
  // with them saved. Saving every state as well was slower again (its memory traffic).
  T* checkpoints = nullptr;
  T* candidates = nullptr;
};

template <typename T>
struct M2rnnBackward {
  M2rnnForward<T> fwd;  // the same inputs; fwd.checkpoints and candidates: what forward saved
  double grad_clip = 0;
  const T* dy;        // (B, S, N, V), contiguous
  const T* dh_final;  // (B, N, K, V), contiguous; nullptr means zeros
  // Outputs, contiguous, in the head counts of their inputs (shared heads accumulate).
  T* dq;   // (B, S, Nq, K)
  T* dk;   // (B, S, Nk, K)
  T* dv;   // (B, S, Nv, V)
  T* dW;   // (Nw, V, V)
  T* df;   // (B, S, Nf)
  T* dh0;  // (B, N, K, V); may be nullptr when h0 was
};

// CPU implementation, plain loops over time; parallel over (b, n) chains with OpenMP where
// available. T is float or double (the oracle runs in double).
template <typename T>
void m2rnn_forward_cpu(const M2rnnForward<T>& p);
template <typename T>
void m2rnn_backward_cpu(const M2rnnBackward<T>& p);

}  // namespace m2b::kernels
