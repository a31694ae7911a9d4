#pragma once
// What m2rnn_cpu.cpp hands the per-chain loops of m2rnn_cpu_chain.h. Those loops are compiled
// once per instruction set, so everything crossing between them is a plain pointer or a
// function pointer: no inline function here may end up compiled for an instruction set the
// machine lacks.
#include <cstdint>

#include "kernels/m2rnn.h"

namespace m2b::kernels {

// A chain's gradient slots. dq, dk, dv and df are laid out (B, S, N, inner): each chain writes its
// own head n, and m2rnn_cpu.cpp sums the slots of shared heads afterwards; dW is (B, N, V, V),
// summed over the batch and shared heads afterwards.
template <typename T>
struct ChainGradients {
  T *dq, *dk, *dv, *df, *dW;
  const T* W_t;  // (Nw, V, V): every W transposed
};

// Scratch a chain needs, in units of K*V elements: the forward's state and candidate (the
// candidate unless the forward saves them); the backward's dA and carried gradient, and one
// chunk of rebuilt states.
constexpr int64_t kForwardScratchMatrices = 2;
constexpr int64_t kBackwardScratchMatrices = 2 + kCpuCheckpointEvery;

template <typename T>
struct ChainKernels {
  void (*forward)(const M2rnnForward<T>& p, int64_t b, int64_t n, T* scratch);
  void (*backward)(const M2rnnBackward<T>& p, const ChainGradients<T>& g, int64_t b, int64_t n,
                   T* scratch);
};

// The chain loops for state width V (specialised for V in {8, 16, 32, 64}), one set per build.
template <typename T>
ChainKernels<T> chain_kernels_baseline(int64_t V);
template <typename T>
ChainKernels<T> chain_kernels_avx2(int64_t V);  // x86-64 only
template <typename T>
ChainKernels<T> chain_kernels_avx512(int64_t V);  // x86-64 only

// The instruction set the CPU kernels use: the best the machine has, unless set lower. Tests set
// it to hold both builds to the same results.
enum class CpuIsa { Baseline, Avx2, Avx512 };
CpuIsa m2rnn_cpu_isa();
// Throws std::invalid_argument when the machine lacks `isa`.
void m2rnn_cpu_set_isa(CpuIsa isa);
bool m2rnn_cpu_has_isa(CpuIsa isa);

}  // namespace m2b::kernels
