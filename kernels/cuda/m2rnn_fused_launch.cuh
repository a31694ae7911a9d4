#pragma once
// Picks the compile-time configuration of the fused kernels for a shape and launches them. Each
// element type / math path is instantiated in its own translation unit (m2rnn_fused_*.cu) so
// that they compile in parallel.
#include <type_traits>

#include "kernels/cuda/m2rnn_fused.cuh"

namespace m2b::kernels::cuda::detail {

// The kernels are latency-bound (each step waits on the last), so what matters is how many warps
// each multiprocessor interleaves. Forward: one warp per 16 rows (MT = 1), registers capped so
// that enough chains stay resident (64 for small states: 2048 statetrack chains in one wave; 80
// for K = 64, V = 16: lm400m's 672 chains at 6 per multiprocessor). Backward: more state per
// thread, so MT = 1 only from K V >= 1024 and otherwise one warp per chain (MT * V <= 64),
// registers capped at 80 / 128 by per-thread state. P (tile steps, shared by both): as many as
// keep the backward's per-step shared memory (state and dA) within a budget that lets as many
// chains share a multiprocessor as their count usually asks for (16 KiB for K V <= 512, 32 KiB
// up to 2048, else one chain takes most of it). The caps were read off ptxas (no spills) for
// the benchmark shapes; see kernels/cuda/NOTES.md.
template <typename T, int K, int V, bool kExact>
struct Tuned {
  static constexpr int kStepBytes = 2 * K * (V + 16 / static_cast<int>(sizeof(T))) * static_cast<int>(sizeof(T));
  static constexpr int kBudget = K * V <= 512 ? 16 * 1024 : K * V <= 2048 ? 32 * 1024 : 160 * 1024;
  static constexpr int P = kBudget / kStepBytes >= 8 ? 8 : kBudget / kStepBytes >= 4 ? 4 : 2;

  static constexpr int min_blocks(int threads, int reg_cap) {
    return reg_cap >= 255 ? 1 : (65536 / (threads * reg_cap) < 32 ? 65536 / (threads * reg_cap) : 32);
  }
  static constexpr int kFwdRegs = V == 16 ? (K <= 32 ? 64 : 80) : V == 32 ? 128 : 255;
  using Fwd = Fused<T, K, V, 1, P, kExact, min_blocks(2 * K, kFwdRegs)>;

  static constexpr int kBwdMT = K * V >= 1024 ? 1 : (K / 16 < 64 / V ? K / 16 : 64 / V);
  static constexpr int kBwdState = kBwdMT * V / 2;  // fp32 registers per state copy
  static constexpr int kBwdRegs = kBwdState <= 8 ? 80 : kBwdState <= 16 ? 128 : 255;
  using Bwd = Fused<T, K, V, kBwdMT, P, kExact, min_blocks(32 * K / (16 * kBwdMT), kBwdRegs)>;
};

// Calls fn(integral_constant K, integral_constant V) for the runtime K and V; false if unsupported.
template <typename Fn>
bool dispatch_kv(int64_t K, int64_t V, Fn&& fn) {
  auto with_v = [&](auto k) {
    switch (V) {
      case 16: fn(k, std::integral_constant<int, 16>{}); return true;
      case 32: fn(k, std::integral_constant<int, 32>{}); return true;
      case 64: fn(k, std::integral_constant<int, 64>{}); return true;
      default: return false;
    }
  };
  switch (K) {
    case 16: return with_v(std::integral_constant<int, 16>{});
    case 32: return with_v(std::integral_constant<int, 32>{});
    case 64: return with_v(std::integral_constant<int, 64>{});
    case 128: return with_v(std::integral_constant<int, 128>{});
    default: return false;
  }
}

template <typename Kernel, typename Args>
void launch(Kernel kernel, int threads, int smem_bytes, const Args& a, cudaStream_t stream,
            const char* what) {
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes), what);
  const int64_t blocks = a.B * a.N;
  if (blocks > 0) kernel<<<static_cast<unsigned>(blocks), threads, smem_bytes, stream>>>(a);
  check_cuda(cudaGetLastError(), what);
}

// The fused kernels of one element type and math path; each is explicitly instantiated in its
// own translation unit (m2rnn_fused_*.cu).
template <typename T, bool kExact>
struct FusedLauncher {
  static int tile_steps(int64_t K, int64_t V) {
    int p = 0;
    dispatch_kv(K, V, [&](auto k, auto v) { p = Tuned<T, decltype(k)::value, decltype(v)::value, kExact>::P; });
    return p;
  }
  static void forward(const RecurrenceArgs<T>& a, int64_t K, int64_t V, cudaStream_t stream);
  static void backward(const RecurrenceArgs<T>& a, int64_t K, int64_t V, cudaStream_t stream);
};

// Out of the class body, so that `extern template` below keeps other translation units from
// compiling the kernels.
template <typename T, bool kExact>
void FusedLauncher<T, kExact>::forward(const RecurrenceArgs<T>& a, int64_t K, int64_t V, cudaStream_t stream) {
  dispatch_kv(K, V, [&](auto k, auto v) {
    using C = typename Tuned<T, decltype(k)::value, decltype(v)::value, kExact>::Fwd;
    launch(fused_forward_kernel<C>, C::kThreads, ForwardSmem<C>::kBytes, a, stream, "m2rnn fused forward");
  });
}
template <typename T, bool kExact>
void FusedLauncher<T, kExact>::backward(const RecurrenceArgs<T>& a, int64_t K, int64_t V, cudaStream_t stream) {
  dispatch_kv(K, V, [&](auto k, auto v) {
    using C = typename Tuned<T, decltype(k)::value, decltype(v)::value, kExact>::Bwd;
    launch(fused_backward_kernel<C>, C::kThreads, BackwardSmem<C>::kBytes, a, stream, "m2rnn fused backward");
  });
}

extern template struct FusedLauncher<float, true>;
extern template struct FusedLauncher<float, false>;
extern template struct FusedLauncher<__nv_bfloat16, false>;

}  // namespace m2b::kernels::cuda::detail
