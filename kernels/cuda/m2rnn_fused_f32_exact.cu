// The fused kernels for float inputs, exact fp32 math.
#include "kernels/cuda/m2rnn_fused_launch.cuh"

namespace m2b::kernels::cuda::detail {
template struct FusedLauncher<float, true>;
}  // namespace m2b::kernels::cuda::detail
