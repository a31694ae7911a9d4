// Host side of the fused backend: checks, memory plans, launches.
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "kernels/cuda/m2rnn_fused_launch.cuh"

namespace m2b::kernels::cuda {

using detail::FusedLauncher;
using detail::RecurrenceArgs;

const char* to_string(M2rnnMath math) { return math == M2rnnMath::exact ? "exact" : "tensor"; }

namespace {

template <typename T>
constexpr const char* type_name() {
  return std::is_same_v<T, float> ? "fp32" : "bf16";
}

// Runs fn(launcher) with the launcher of T and options.math (checked before).
template <typename T, typename Fn>
void with_launcher(const M2rnnCudaOptions& o, Fn&& fn) {
  if constexpr (std::is_same_v<T, float>) {
    if (o.math == M2rnnMath::exact) return fn(FusedLauncher<float, true>{});
  }
  fn(FusedLauncher<T, false>{});
}

int64_t chunks(const M2rnnShape& s, const M2rnnCudaOptions& o) {
  return (s.S + o.state_checkpoint_every - 1) / o.state_checkpoint_every;
}

template <typename T>
size_t scratch_bytes(const M2rnnShape& s, const M2rnnCudaOptions& o) {
  int64_t tile = 0;
  with_launcher<T>(o, [&](auto launcher) { tile = launcher.backward_tile(s.K, s.V); });
  return detail::align256(
      static_cast<size_t>(s.B * s.N() * (o.state_checkpoint_every / tile) * s.K * s.V) * 4);
}

// Whether every row of an input starts `bytes`-aligned: the pointer and every stride.
template <typename T>
bool rows_aligned(const void* ptr, const SeqStrides& st, int64_t bytes) {
  const int64_t e = bytes / static_cast<int64_t>(sizeof(T));
  return reinterpret_cast<uintptr_t>(ptr) % bytes == 0 && st.b % e == 0 && st.s % e == 0 &&
         st.h % e == 0;
}

// cp.async stages q, k, v and dy in 4-byte copies at least: bf16 rows must start at even elements.
template <typename T>
void check_rows_aligned(const M2rnnForward<T>& p) {
  if constexpr (!std::is_same_v<T, float>) {
    const std::pair<const char*, std::pair<const T*, SeqStrides>> inputs[] = {
        {"q", {p.q, p.q_stride}}, {"k", {p.k, p.k_stride}}, {"v", {p.v, p.v_stride}}};
    for (const auto& [name, in] : inputs) {
      const auto& [ptr, st] = in;
      if (!rows_aligned<T>(ptr, st, 4))
        throw std::invalid_argument(
            std::string("m2rnn cuda: bf16 ") + name +
            " rows must start at even elements (a 4-byte aligned pointer and even "
            "strides), got strides (" +
            std::to_string(st.b) + ", " + std::to_string(st.s) + ", " + std::to_string(st.h) +
            "); pass a contiguous copy");
    }
  }
}

// Whether every row of q, k and v starts 16-byte aligned, so that the kernels stage them in
// 16-byte copies.
template <typename T>
bool rows_aligned16(const M2rnnForward<T>& p) {
  return rows_aligned<T>(p.q, p.q_stride, 16) && rows_aligned<T>(p.k, p.k_stride, 16) &&
         rows_aligned<T>(p.v, p.v_stride, 16);
}

}  // namespace

template <typename T>
void m2rnn_fused_check(const M2rnnShape& s, const M2rnnCudaOptions& o) {
  s.validate();
  if (s.K != 16 && s.K != 32 && s.K != 64 && s.K != 128)
    throw std::invalid_argument("m2rnn cuda: K = " + std::to_string(s.K) +
                                " is not supported; the fused kernels take K in {16, 32, 64, 128}");
  if (s.V != 16 && s.V != 32 && s.V != 64)
    throw std::invalid_argument("m2rnn cuda: V = " + std::to_string(s.V) +
                                " is not supported; the fused kernels take V in {16, 32, 64}");
  if (!std::is_same_v<T, float> && o.math == M2rnnMath::exact)
    throw std::invalid_argument(std::string("m2rnn cuda: math = exact takes fp32 inputs, got ") +
                                type_name<T>() + "; use math = tensor");
  const int64_t tile = m2rnn_fused_tile_steps<T>(s, o);
  if (o.state_checkpoint_every <= 0 || o.state_checkpoint_every % tile != 0)
    throw std::invalid_argument(
        "m2rnn cuda: state_checkpoint_every = " + std::to_string(o.state_checkpoint_every) +
        " must be a positive multiple of " + std::to_string(tile) +
        " (the kernels' tiles of steps for K = " + std::to_string(s.K) + ", V = " +
        std::to_string(s.V) + ", " + type_name<T>() + ", " + to_string(o.math) + " math)");
}

template <typename T>
int64_t m2rnn_fused_tile_steps(const M2rnnShape& s, const M2rnnCudaOptions& o) {
  int64_t tile = 0;
  with_launcher<T>(o, [&](auto launcher) { tile = launcher.checkpoint_multiple(s.K, s.V); });
  return tile;
}

int64_t m2rnn_checkpoint_count(const M2rnnShape& s, const M2rnnCudaOptions& o) {
  return chunks(s, o) - 1;
}
size_t m2rnn_checkpoint_bytes(const M2rnnShape& s, const M2rnnCudaOptions& o) {
  return static_cast<size_t>(s.B * s.N() * m2rnn_checkpoint_count(s, o) * s.K * s.V) * 4;
}
size_t m2rnn_all_states_bytes(const M2rnnShape& s, size_t element_bytes) {
  return static_cast<size_t>(s.B * s.S * s.N() * s.K * s.V) * element_bytes;
}

template <typename T>
void m2rnn_fused_forward(const M2rnnForward<T>& p, const M2rnnCudaOptions& o, float* checkpoints,
                         cudaStream_t stream) {
  m2rnn_fused_check<T>(p.shape, o);
  check_rows_aligned(p);
  if (p.checkpoints)
    throw std::invalid_argument(
        "m2rnn cuda: p.checkpoints (the CPU kernels' layout) must be null; the fused forward "
        "saves its own every state_checkpoint_every steps (m2rnn_checkpoint_bytes)");
  RecurrenceArgs<T> a = detail::forward_args(p);
  a.C = o.state_checkpoint_every;
  a.nck = m2rnn_checkpoint_count(p.shape, o);
  a.ck = checkpoints;
  a.copy16 = rows_aligned16(p);
  with_launcher<T>(o, [&](auto launcher) { launcher.forward(a, p.shape.K, p.shape.V, stream); });
}

template <typename T>
size_t m2rnn_fused_backward_workspace_bytes(const M2rnnShape& s, const M2rnnCudaOptions& o) {
  m2rnn_fused_check<T>(s, o);
  return detail::grad_workspace_bytes<T>(s) + scratch_bytes<T>(s, o);
}

template <typename T>
void m2rnn_fused_backward(const M2rnnBackward<T>& p, const M2rnnCudaOptions& o,
                          const float* checkpoints, void* workspace, size_t workspace_bytes,
                          cudaStream_t stream) {
  const M2rnnShape& s = p.fwd.shape;
  const size_t need = m2rnn_fused_backward_workspace_bytes<T>(s, o);
  if (workspace_bytes < need || (need > 0 && !workspace))
    throw std::invalid_argument("m2rnn cuda: the backward needs a workspace of " +
                                std::to_string(need) + " bytes, got " +
                                std::to_string(workspace_bytes));
  if (m2rnn_checkpoint_count(s, o) > 0 && !checkpoints)
    throw std::invalid_argument("m2rnn cuda: the backward needs the forward's checkpoints");
  check_rows_aligned(p.fwd);
  if (reinterpret_cast<uintptr_t>(p.dy) % 4 != 0)
    throw std::invalid_argument("m2rnn cuda: dy must be 4-byte aligned");
  RecurrenceArgs<T> a = detail::forward_args(p.fwd);
  const int64_t N = s.N();
  a.C = o.state_checkpoint_every;
  a.nck = m2rnn_checkpoint_count(s, o);
  a.ck = const_cast<float*>(checkpoints);
  a.dy = {p.dy, s.S * N * s.V, N * s.V, s.V, N};
  a.copy16 = rows_aligned16(p.fwd) && rows_aligned<T>(p.dy, {s.S * N * s.V, N * s.V, s.V}, 16);
  a.dh_final = p.dh_final;
  a.clip = p.grad_clip > 0 ? static_cast<float>(p.grad_clip) : 0.f;
  a.dh0 = p.dh0;
  detail::grad_begin(p, workspace, a, stream);
  a.scratch =
      reinterpret_cast<float*>(static_cast<char*>(workspace) + detail::grad_workspace_bytes<T>(s));
  with_launcher<T>(o, [&](auto launcher) { launcher.backward(a, s.K, s.V, stream); });
  detail::grad_finish(p, a, stream);
}

#define M2RNN_INSTANTIATE(T)                                                                    \
  template void m2rnn_fused_check<T>(const M2rnnShape&, const M2rnnCudaOptions&);               \
  template int64_t m2rnn_fused_tile_steps<T>(const M2rnnShape&, const M2rnnCudaOptions&);       \
  template void m2rnn_fused_forward<T>(const M2rnnForward<T>&, const M2rnnCudaOptions&, float*, \
                                       cudaStream_t);                                           \
  template size_t m2rnn_fused_backward_workspace_bytes<T>(const M2rnnShape&,                    \
                                                          const M2rnnCudaOptions&);             \
  template void m2rnn_fused_backward<T>(const M2rnnBackward<T>&, const M2rnnCudaOptions&,       \
                                        const float*, void*, size_t, cudaStream_t);
M2RNN_INSTANTIATE(float)
M2RNN_INSTANTIATE(bf16)
#undef M2RNN_INSTANTIATE

}  // namespace m2b::kernels::cuda
