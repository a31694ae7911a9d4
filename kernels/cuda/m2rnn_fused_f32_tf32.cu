// The fused kernels for float inputs, tensor-core math.
#include "kernels/cuda/m2rnn_fused_launch.cuh"

namespace m2b::kernels::cuda::detail {
template struct FusedLauncher<float, false>;
}  // namespace m2b::kernels::cuda::detail
