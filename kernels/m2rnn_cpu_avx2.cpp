// The chain loops of m2rnn_cpu_chain.h built for AVX2 with FMA; m2rnn_cpu.cpp picks this build
// at run time where the machine has them, so the binary still runs on any x86-64.
#if defined(__x86_64__)
// Headers before the pragma, so that only this build's own functions take the target.
#include <cstdint>

#include "kernels/m2rnn_cpu_internal.h"

#pragma GCC target("avx2,fma")
#define M2RNN_CPU_ENTRY chain_kernels_avx2
#define M2RNN_CPU_MIN_PS __builtin_ia32_minps256
#define M2RNN_CPU_MAX_PS __builtin_ia32_maxps256
#include "kernels/m2rnn_cpu_chain.h"
#endif
