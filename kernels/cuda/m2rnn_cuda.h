#pragma once
// The M2RNN recurrence on NVIDIA GPUs, torch-free: raw device pointers, element strides, a stream.
// Two backends compute the function of kernels/m2rnn.h:
//   fused  - one kernel for the forward, one for the backward; each (batch, head) chain keeps its
//            K x V state on chip for the whole sequence (kernels/cuda/m2rnn_fused_*.cuh).
//   cublas - the obvious baseline: per step one strided-batched cuBLAS GEMM for H W and one
//            elementwise kernel (kernels/cuda/m2rnn_cublas.cu).
// Element types: float, and __nv_bfloat16 (bf16 below). Every pointer is device memory.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/m2rnn.h"

namespace m2b::kernels::cuda {

using bf16 = __nv_bfloat16;

// exact:  fp32 FMA and tanhf, no tensor cores; fp32 inputs only.
// tensor: H W, dA W^T and H^T dA on tensor cores (mma.sync: bf16 m16n8k16 for bf16 inputs, tf32
//         m16n8k8 for fp32 inputs), fp32 accumulation, tanh.approx.f32.
enum class M2rnnMath { exact, tensor };
const char* to_string(M2rnnMath math);

struct M2rnnCudaOptions {
  M2rnnMath math = M2rnnMath::tensor;
  // C: the forward saves the state every C steps for the backward, which recomputes the states
  // inside each chunk on chip. A positive multiple of the kernel's tile (m2rnn_fused_tile_steps).
  int64_t state_checkpoint_every = 64;
};

// The shapes and options the fused kernels support; throws std::invalid_argument naming the
// offending value and the supported set (K in {16,32,64,128}, V in {16,32,64}, ...).
template <typename T>
void m2rnn_fused_check(const M2rnnShape& shape, const M2rnnCudaOptions& options);
// The multiple of which state_checkpoint_every must be for this shape: the larger of the fused
// kernels' tiles of steps.
template <typename T>
int64_t m2rnn_fused_tile_steps(const M2rnnShape& shape, const M2rnnCudaOptions& options);

// Saved states between forward and backward: H_{jC} for j = 1 .. ceil(S/C)-1, laid out
// (B, N, j, K, V) in fp32 (the chain's state stays fp32 on chip, so the backward recomputes the
// forward's states exactly).
int64_t m2rnn_checkpoint_count(const M2rnnShape& shape, const M2rnnCudaOptions& options);
size_t m2rnn_checkpoint_bytes(const M2rnnShape& shape, const M2rnnCudaOptions& options);
// What storing every state H_1..H_S in the input type would take, for comparison.
size_t m2rnn_all_states_bytes(const M2rnnShape& shape, size_t element_bytes);

// Forward. p.checkpoints (the CPU kernels') must be null: pass `checkpoints`
// (m2rnn_checkpoint_bytes) for training, or nullptr for inference.
template <typename T>
void m2rnn_fused_forward(const M2rnnForward<T>& p, const M2rnnCudaOptions& options,
                         float* checkpoints, cudaStream_t stream);

// Backward from the forward's checkpoints. p.fwd.checkpoints is ignored; the workspace (fp32
// accumulators of shared-head gradients, recomputation scratch) must hold
// m2rnn_fused_backward_workspace_bytes and be 256-byte aligned.
template <typename T>
size_t m2rnn_fused_backward_workspace_bytes(const M2rnnShape& shape,
                                            const M2rnnCudaOptions& options);
template <typename T>
void m2rnn_fused_backward(const M2rnnBackward<T>& p, const M2rnnCudaOptions& options,
                          const float* checkpoints, void* workspace, size_t workspace_bytes,
                          cudaStream_t stream);

// The cuBLAS baseline keeps every state, (S + 1, B * N, K, V) in fp32 (m2rnn_cublas_states_bytes),
// and works in fp32 whatever T is; `handle` must be bound to `stream` by the caller.
size_t m2rnn_cublas_states_bytes(const M2rnnShape& shape);
template <typename T>
size_t m2rnn_cublas_workspace_bytes(const M2rnnShape& shape);
template <typename T>
void m2rnn_cublas_forward(const M2rnnForward<T>& p, float* states, void* workspace,
                          size_t workspace_bytes, cublasHandle_t handle, cudaStream_t stream);
template <typename T>
void m2rnn_cublas_backward(const M2rnnBackward<T>& p, const float* states, void* workspace,
                           size_t workspace_bytes, cublasHandle_t handle, cudaStream_t stream);

}  // namespace m2b::kernels::cuda
