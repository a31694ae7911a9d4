# Sourced by the scripts that run on a GPU machine (gpu-check.sh, gpu-suites.sh): where the
# project, its CUDA build and the machine's LibTorch are, and the configure step they share.
#   M2B_GPU_BUILD     the build folder (default build-gpu)
#   M2B_TORCH_PREFIX  LibTorch's cmake prefix (default: the GPU machines' /opt/torch venv)
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${M2B_GPU_BUILD:-$root/build-gpu}"
torch_prefix="${M2B_TORCH_PREFIX:-/opt/torch/.venv/lib/python3.12/site-packages/torch/share/cmake}"
export PATH="$PATH:/usr/local/cuda/bin"

# Configures $build with CUDA once; returns non-zero (the log in $1/configure.log) on failure.
m2b_gpu_configure() {
  [ -f "$build/CMakeCache.txt" ] && return 0
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DM2BENCH_CUDA=ON \
    -DCMAKE_PREFIX_PATH="$torch_prefix" >"$1/configure.log" 2>&1
}
