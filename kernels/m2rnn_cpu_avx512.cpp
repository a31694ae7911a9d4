// The chain loops of m2rnn_cpu_chain.h built for AVX-512 (64-byte vectors: a row of 16 floats is
// one register); m2rnn_cpu.cpp picks this build at run time where the machine has it.
#if defined(__x86_64__)
// Headers before the pragma, so that only this build's own functions take the target.
#include <cstdint>

#include "kernels/m2rnn_cpu_internal.h"

#pragma GCC target("avx512f,avx512vl,avx512dq,avx2,fma")
#define M2RNN_CPU_ENTRY chain_kernels_avx512
#define M2RNN_CPU_VECTOR_BYTES 64
#define M2RNN_CPU_MIN_PS(a, b) __builtin_ia32_minps512_mask(a, b, a, -1, 4)
#define M2RNN_CPU_MAX_PS(a, b) __builtin_ia32_maxps512_mask(a, b, a, -1, 4)
#include "kernels/m2rnn_cpu_chain.h"
#endif
