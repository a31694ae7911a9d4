#!/usr/bin/env bash
# Installs what m2bench needs and is missing; a second run installs nothing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# slurm-wlm and munge: the one-node cluster of the `slurm` tests (tests/cluster/slurm_cluster.sh);
# clang-format: scripts/format.sh.
APT_PACKAGES=(cmake ninja-build g++ libyaml-cpp-dev libfmt-dev catch2 libbenchmark-dev
              libcli11-dev nlohmann-json3-dev ccache slurm-wlm munge clang-format)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing packages ${missing[*]} and cannot apt-get install them here;" \
         "the build will say what it cannot find" >&2
  fi
fi

if ! py="$(m2bench_find_python)"; then
  # The PyPI wheel is the CUDA build. Its CUDA libraries come from the system CUDA toolkit where
  # one is installed; only the three it lacks are fetched, which saves gigabytes of download.
  echo "setup: creating $M2BENCH_ROOT/.venv with torch==$M2BENCH_TORCH_VERSION (about 1.7 GB)"
  python3 -m venv "$M2BENCH_ROOT/.venv"
  py="$M2BENCH_ROOT/.venv/bin/python"
  "$py" -m pip install -q --upgrade pip
  "$py" -m pip install -q --no-deps "torch==$M2BENCH_TORCH_VERSION"
  if [ -d /usr/local/cuda/lib64 ]; then
    "$py" -m pip install -q --no-deps nvidia-cusparselt-cu13==0.8.0 nvidia-nvshmem-cu13==3.4.5 \
      nvidia-cufile==1.15.1.6
  else
    "$py" -m pip install -q "torch==$M2BENCH_TORCH_VERSION"
  fi
fi
# The committed figures were drawn with this matplotlib; another version draws the same figures
# with other bytes, so redrawing them would show up in git status.
matplotlib_version=3.11.2
if ! "$py" -c "import matplotlib" 2>/dev/null; then
  echo "setup: installing matplotlib==$matplotlib_version into $py"
  "$py" -m pip install -q "matplotlib==$matplotlib_version"
elif ! "$py" -c "import matplotlib, sys; sys.exit(matplotlib.__version__ != '$matplotlib_version')"; then
  echo "setup: note: $py has matplotlib $("$py" -c "import matplotlib; print(matplotlib.__version__)"), the committed figures $matplotlib_version; redrawn figures may differ in bytes"
fi
# scripts/sass_loops.py reads kernels' SASS with cuobjdump and nvdisasm; where the CUDA toolkit
# lacks them (this machine's has only the compiler), the project's venv gets them from PyPI.
if [ "$py" = "$M2BENCH_ROOT/.venv/bin/python" ] && ! command -v nvdisasm >/dev/null \
   && [ ! -x /usr/local/cuda/bin/nvdisasm ] \
   && ! compgen -G "$M2BENCH_ROOT/.venv/lib/python3*/site-packages/nvidia/cu*/bin/nvdisasm" >/dev/null; then
  echo "setup: installing cuobjdump and nvdisasm into $M2BENCH_ROOT/.venv (for scripts/sass_loops.py)"
  "$py" -m pip install -q nvidia-cuda-cuobjdump==13.5.37 nvidia-cuda-nvdisasm==13.5.37
fi
echo "setup: LibTorch from $py"
