# Sourced by the scripts that run on a GPU machine (gpu-check.sh, gpu-suites.sh): where the
# project, its CUDA build and the machine's LibTorch are, and the configure step they share.
#   M2B_GPU_BUILD     the build folder (default build-gpu)
#   M2B_TORCH_PREFIX  LibTorch's cmake prefix (default: the GPU machines' /opt/torch venv)
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${M2B_GPU_BUILD:-$root/build-gpu}"
torch_prefix="${M2B_TORCH_PREFIX:-/opt/torch/.venv/lib/python3.12/site-packages/torch/share/cmake}"
export PATH="$PATH:/usr/local/cuda/bin"

# Configures $build with CUDA once; on failure prints the log's tail (all of it in $1/build.log,
# which the build appends to: the device tool brings back at most 8 files from $OUT, and
# gpu-check.sh's others take 7) and returns non-zero. It starts the log afresh even when $build
# is configured already, so that a reused $1 never shows an earlier run's errors.
m2b_gpu_configure() {
  : >"$1/build.log"
  [ -f "$build/CMakeCache.txt" ] && return 0
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DM2BENCH_CUDA=ON \
    -DCMAKE_PREFIX_PATH="$torch_prefix" >>"$1/build.log" 2>&1 && return 0
  echo "== configure FAILED"; tail -30 "$1/build.log"; return 1
}

# m2b_gpu_build OUT TARGET...: builds the targets in $build on the machine's 16 cores; on failure
# prints the first errors (the whole log appended to OUT/build.log) and returns non-zero.
m2b_gpu_build() {
  local out="$1"; shift
  cmake --build "$build" -j 16 --target "$@" >>"$out/build.log" 2>&1 && return 0
  echo "== build FAILED"; grep -B2 -A8 -m5 "error" "$out/build.log"; return 1
}

# The programs of the `gpu`-labelled tests in the configured $build, one per line: a test
# <concern>_gpu_test_<file> is a part of the program <concern>_gpu_tests.
m2b_gpu_test_targets() {
  (cd "$build" && ctest -N -L gpu | sed -n 's/^ *Test *#[0-9]*: \(.*_gpu_test\)_.*/\1s/p' | sort -u)
}

# m2b_gpu_programs OUT NAME...: makes the programs NAME... (m2bench, bench_*, <concern>_gpu_tests)
# ready and sets m2b_bin[NAME] to each one's path. With M2B_PREBUILT, a folder holding them all
# (built on another machine against the same LibTorch, with the shared libraries they need that
# this machine lacks), they are used as they are when every one loads here; otherwise they are
# built in $build. Saves the build's minutes of a short device lease.
declare -A m2b_bin
m2b_gpu_programs() {
  local out="$1" name missing=0; shift
  if [ -n "${M2B_PREBUILT:-}" ]; then
    export LD_LIBRARY_PATH="$M2B_PREBUILT:$torch_prefix/../../lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    for name in "$@"; do
      if [ -x "$M2B_PREBUILT/$name" ] && ! ldd "$M2B_PREBUILT/$name" | grep -q "not found"; then
        m2b_bin[$name]="$M2B_PREBUILT/$name"
      else
        missing=1; ldd "$M2B_PREBUILT/$name" >>"$out/ldd.txt" 2>&1
      fi
    done
    if [ $missing = 0 ]; then echo "== using the programs prebuilt in $M2B_PREBUILT"; return 0; fi
    echo "== prebuilt programs do not all load here (ldd.txt); building"
  fi
  m2b_gpu_configure "$out" || return 1
  m2b_gpu_build "$out" "$@" || return 1
  for name in "$@"; do m2b_bin[$name]="$(find "$build" -maxdepth 3 -type f -name "$name" | head -1)"; done
}

# m2b_gpu_sanitize OUT TEST_PROGRAM: compute-sanitizer memcheck and racecheck on the program's
# [sanitize] cases (small shapes: the tools slow kernels by 10-100x); a log per tool in OUT and one
# summary line per tool on stdout. Returns non-zero when either tool reports an error.
m2b_gpu_sanitize() {
  local out="$1" program="$2" tool rc=0 tool_rc
  for tool in memcheck racecheck; do
    compute-sanitizer --tool "$tool" --error-exitcode 9 "$program" "[sanitize]" >"$out/sanitize_$tool.log" 2>&1
    tool_rc=$?
    [ $tool_rc -ne 0 ] && rc=1
    echo "compute-sanitizer $tool rc=$tool_rc: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitize_$tool.log" | tail -1)"
  done
  return $rc
}
