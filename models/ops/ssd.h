#pragma once
// The scalar-decay state-space recurrence of Mamba-2 (state-space duality, Dao & Gu 2024). Per
// batch element and head, with a state S of d_state x head_dim (N x P):
//   S_t = exp(a_t) S_{t-1} + B_t x_t^T
//   y_t = S_t^T C_t                          (the D skip belongs to the layer)
// Three forms that the tests hold equal: the quadratic masked ("attention-like") form, the chunked
// SSD algorithm used for training, and the one-token step used for inference (looped over a
// sequence it is the recurrent form). All are plain torch ops, so autograd differentiates them.
//
// Shapes: x (b, S, H, P); a (b, S, H), the log decays (<= 0); B and C (b, S, G, N), G groups
// shared by the heads (G divides H; head h reads group h / (H / G)); states (b, H, N, P). An
// undefined initial state means zeros.
#include <torch/torch.h>

namespace m2b::models::ops {

struct SsdResult {
  torch::Tensor y;            // (b, S, H, P); the step's is (b, H, P)
  torch::Tensor final_state;  // (b, H, N, P)
};

SsdResult ssd_naive(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& B,
                    const torch::Tensor& C, const torch::Tensor& initial_state = {});

// Intra-chunk quadratic form with the segment-sum decay mask, then state passing between chunks.
// S need not be a multiple of `chunk`.
SsdResult ssd_chunked(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& B,
                      const torch::Tensor& C, int64_t chunk,
                      const torch::Tensor& initial_state = {});

// One token: x (b, H, P), a (b, H), B and C (b, G, N).
SsdResult ssd_step(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& B,
                   const torch::Tensor& C, const torch::Tensor& state = {});

// ssd_step looped over the sequence.
SsdResult ssd_recurrent(const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& B,
                        const torch::Tensor& C, const torch::Tensor& initial_state = {});

}  // namespace m2b::models::ops
