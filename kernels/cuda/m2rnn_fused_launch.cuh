#pragma once
// Picks the compile-time configuration of the fused kernels for a shape and launches them. Each
// element type / math path is instantiated in its own translation unit (m2rnn_fused_*.cu) so
// that they compile in parallel.
#include <algorithm>
#include <type_traits>

#include "kernels/cuda/m2rnn_fused_backward.cuh"
#include "kernels/cuda/m2rnn_fused_forward.cuh"
#include "kernels/cuda/m2rnn_fused_traits.cuh"

namespace m2b::kernels::cuda::detail {

// MT: rows per warp in 16s, at most 32 (MT <= 2) and at most 32 fp32 registers per state copy
// (MT * V <= 64): one warp per chain where the state is small (statetrack), else more. With one
// warp per chain of K 64, V 16 (lm400m: 5 chains per multiprocessor) most schedulers had a single
// warp and the step's latency showed; two warps per chain double the warps in flight. P (tile steps): as many as
// keep the backward's per-step shared memory (state and dA) within a budget that lets as many
// chains share a multiprocessor as their count usually asks for (16 KiB for K V <= 512, 32 KiB
// up to 2048, else one chain takes most of it). Min blocks: with small per-thread state, cap the
// registers at 128 so that 16 warps of 32 threads fit (the statetrack shape: 2048 chains).
// Where a chain takes a multiprocessor to itself (K V >= 4096, one warp per scheduler) its kernels
// double their warps, up to 8 (16 would cap registers at 128 and spill): the forward splits each
// row block's columns over two warps (CS, m2rnn_fused_traits.cuh), the backward gives the
// recomputation of the states and dW to a second group of warps (recompute warps), which takes
// second slots of states and dA (BackwardSmem), hence its smaller P.
template <typename T, int K, int V, bool kExact>
struct Tuned {
  static constexpr int MT = std::min({K / 16, 64 / V, 2});
  static constexpr int kThreads = 32 * K / (16 * MT);
  static constexpr bool kOwnsSm = !kExact && K * V >= 4096 && kThreads <= 128;
  static constexpr int kStepBytes =
      (kOwnsSm ? 4 : 2) * K * (V + 16 / static_cast<int>(sizeof(T))) * static_cast<int>(sizeof(T));
  static constexpr int kBudget = K * V <= 512 ? 16 * 1024 : K * V <= 2048 ? 32 * 1024 : 160 * 1024;
  static constexpr int P = kBudget / kStepBytes >= 8 ? 8 : kBudget / kStepBytes >= 4 ? 4 : 2;
  static constexpr int kMinBlocks = MT * (V / 8) * 4 <= 16 ? 65536 / (kThreads * 128) : 1;
  using Bwd = Fused<T, K, V, MT, P, kExact, kMinBlocks, 1, kOwnsSm>;
  using Fwd = Fused<T, K, V, MT, P, kExact, kMinBlocks, kOwnsSm ? 2 : 1>;
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
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes),
             what);
  const int64_t blocks = a.B * a.N;
  if (blocks > 0) kernel<<<static_cast<unsigned>(blocks), threads, smem_bytes, stream>>>(a);
  check_cuda(cudaGetLastError(), what);
}

// The fused kernels of one element type and math path; each is explicitly instantiated in its
// own translation unit (m2rnn_fused_*.cu).
template <typename T, bool kExact>
struct FusedLauncher {
  // Steps per tile: of the backward (its scratch holds one state per tile of a chunk), and the
  // multiple of which state_checkpoint_every must be, since checkpoints fall on the ends of both
  // kernels' tiles (powers of two: the larger tile is a multiple of the smaller).
  static int backward_tile(int64_t K, int64_t V) {
    return of_config(K, V, [](auto t) { return decltype(t)::Bwd::P; });
  }
  static int checkpoint_multiple(int64_t K, int64_t V) {
    return of_config(K, V,
                     [](auto t) { return std::max(decltype(t)::Bwd::P, decltype(t)::Fwd::PF); });
  }
  // fn(Tuned{}) for the configurations of K and V (0 where they are unsupported).
  template <typename Fn>
  static int of_config(int64_t K, int64_t V, Fn fn) {
    int r = 0;
    dispatch_kv(K, V, [&](auto k, auto v) {
      r = fn(Tuned<T, decltype(k)::value, decltype(v)::value, kExact>{});
    });
    return r;
  }
  static void forward(const RecurrenceArgs<T>& a, int64_t K, int64_t V, cudaStream_t stream);
  static void backward(const RecurrenceArgs<T>& a, int64_t K, int64_t V, cudaStream_t stream);
};

// Out of the class body, so that `extern template` below keeps other translation units from
// compiling the kernels.
template <typename T, bool kExact>
void FusedLauncher<T, kExact>::forward(const RecurrenceArgs<T>& a, int64_t K, int64_t V,
                                       cudaStream_t stream) {
  dispatch_kv(K, V, [&](auto k, auto v) {
    using C = typename Tuned<T, decltype(k)::value, decltype(v)::value, kExact>::Fwd;
    launch(fused_forward_kernel<C>, C::kBlockThreads, ForwardSmem<C>::kBytes, a, stream,
           "m2rnn fused forward");
  });
}
template <typename T, bool kExact>
void FusedLauncher<T, kExact>::backward(const RecurrenceArgs<T>& a, int64_t K, int64_t V,
                                        cudaStream_t stream) {
  dispatch_kv(K, V, [&](auto k, auto v) {
    using C = typename Tuned<T, decltype(k)::value, decltype(v)::value, kExact>::Bwd;
    launch(fused_backward_kernel<C>, C::kBlockThreads, BackwardSmem<C>::kBytes, a, stream,
           "m2rnn fused backward");
  });
}

extern template struct FusedLauncher<float, true>;
extern template struct FusedLauncher<float, false>;
extern template struct FusedLauncher<__nv_bfloat16, false>;

}  // namespace m2b::kernels::cuda::detail
