// The fused kernels for __nv_bfloat16 inputs, tensor-core math.
#include "kernels/cuda/m2rnn_fused_launch.cuh"

namespace m2b::kernels::cuda::detail {
template struct FusedLauncher<__nv_bfloat16, false>;
}  // namespace m2b::kernels::cuda::detail
