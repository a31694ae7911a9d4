# Sourced by the other scripts: where the project lives and which Python carries LibTorch.
M2BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
M2BENCH_BUILD="${M2BENCH_BUILD:-$M2BENCH_ROOT/build}"
M2BENCH_TORCH_VERSION=2.11.0

# Prints the first Python whose torch is the pinned version: an explicit M2BENCH_PYTHON, the
# project's own .venv, then the GPU machines' preinstalled CUDA build (which can install nothing).
m2bench_find_python() {
  local py
  for py in "${M2BENCH_PYTHON:-}" "$M2BENCH_ROOT/.venv/bin/python" /opt/torch/.venv/bin/python; do
    [ -n "$py" ] && [ -x "$py" ] || continue
    if "$py" -c "import importlib.metadata as m, sys; sys.exit(not m.version('torch').startswith('$M2BENCH_TORCH_VERSION'))" 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}

# torch.utils.cmake_prefix_path, computed without importing torch: the project's venv holds the
# wheel without the CUDA libraries that the system toolkit already provides, so a Python import
# may fail where the C++ libraries link fine.
m2bench_torch_cmake_prefix() {
  "$1" -c "import importlib.util, os; print(os.path.join(importlib.util.find_spec('torch').submodule_search_locations[0], 'share', 'cmake'))"
}
