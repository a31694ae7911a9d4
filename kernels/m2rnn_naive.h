#pragma once
// The M2RNN recurrence of kernels/m2rnn.h as the plainest loops: one chain at a time, every state
// kept, every sum accumulated in double. Slow and obviously right, it is the oracle the fast CPU
// kernel (m2rnn_cpu.cpp, which the CUDA tests in turn compare with) is tested against.
#include "kernels/m2rnn.h"

namespace m2b::kernels {

// Writes p.y and p.h_final; ignores p.checkpoints and p.candidates.
template <typename T>
void m2rnn_forward_naive(const M2rnnForward<T>& p);
// Writes every gradient of p (dh0 where not null) from the inputs alone: it runs the forward
// again and ignores what p.fwd.checkpoints and p.fwd.candidates hold.
template <typename T>
void m2rnn_backward_naive(const M2rnnBackward<T>& p);

}  // namespace m2b::kernels
