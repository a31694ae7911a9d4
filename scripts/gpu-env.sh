# Sourced by the scripts that run on a GPU machine (gpu-check.sh, gpu-suites.sh): where the
# project, its CUDA build and the machine's LibTorch are, and the configure step they share.
#   M2B_GPU_BUILD     the build folder (default build-gpu)
#   M2B_TORCH_PREFIX  LibTorch's cmake prefix (default: the GPU machines' /opt/torch venv)
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${M2B_GPU_BUILD:-$root/build-gpu}"
torch_prefix="${M2B_TORCH_PREFIX:-/opt/torch/.venv/lib/python3.12/site-packages/torch/share/cmake}"
export PATH="$PATH:/usr/local/cuda/bin"

# m2b_bounded CMD...: runs CMD, stopped (status 124) where it would run past the call's deadline
# less 30 s, the time left to pack what comes back: M2B_DEADLINE, in seconds since the epoch, which
# the calling script sets (none: no bound). A hung test or benchmark then costs its step, not the
# whole call and its logs.
m2b_bounded() {
  [ -n "${M2B_DEADLINE:-}" ] || { "$@"; return; }
  local left=$(( M2B_DEADLINE - $(date +%s) - 30 ))
  if [ "$left" -le 0 ]; then echo "== $(basename "$1") not started: the call's deadline is near"; return 124; fi
  timeout --kill-after=10 "$left" "$@"
}

# Configures $build with CUDA once; on failure prints the log's tail (all of it in $1/build.log,
# which the build appends to: the device tool brings back at most 8 files from $OUT) and returns
# non-zero. It starts the log afresh even when $build
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
  m2b_bounded cmake --build "$build" -j 16 --target "$@" >>"$out/build.log" 2>&1
  case $? in
    0) return 0 ;;
    124) echo "== build stopped at the call's deadline" ;;
    *) echo "== build FAILED"; grep -B2 -A8 -m5 "error" "$out/build.log" ;;
  esac
  return 1
}

# The programs of the `gpu`-labelled tests in the configured $build, one per line: a test
# <concern>_gpu_test_<file> is a part of the program <concern>_gpu_tests.
m2b_gpu_test_targets() {
  (cd "$build" && ctest -N -L gpu | sed -n 's/^ *Test *#[0-9]*: \(.*_gpu_test\)_.*/\1s/p' | sort -u)
}

# The programs of the `gpu` tests, one per line: those in M2B_PREBUILT where it is set (built
# elsewhere; m2b_gpu_programs builds them here if they do not load), else those of the configured
# $build, which it configures first (OUT as m2b_gpu_configure's).
m2b_gpu_test_programs() {
  if [ -n "${M2B_PREBUILT:-}" ]; then
    [ -d "$M2B_PREBUILT" ] || { echo "== M2B_PREBUILT=$M2B_PREBUILT is no folder" >&2; return 1; }
    (cd "$M2B_PREBUILT" && ls *_gpu_tests 2>/dev/null)
    return 0
  fi
  m2b_gpu_configure "$1" || return 1
  m2b_gpu_test_targets
}

# m2b_gpu_run_tests LOGS NAME...: runs each `gpu` test program NAME (m2b_gpu_programs made it
# ready), its whole log in LOGS/NAME.log; prints a line per program (its status and Catch2's
# count), the first failures to stderr, and returns non-zero when any failed.
m2b_gpu_run_tests() {
  local logs="$1" name one rc=0; shift
  for name in "$@"; do
    m2b_bounded "${m2b_bin[$name]}" --order rand --rng-seed 1 --durations yes >"$logs/$name.log" 2>&1
    one=$?
    echo "$name rc=$one: $(grep -E 'test cases|All tests passed' "$logs/$name.log" | tail -1)"
    [ $one -eq 0 ] && continue
    rc=1
    grep -B3 -A12 -m8 "FAILED" "$logs/$name.log" | head -120 >&2
  done
  return $rc
}

# m2b_gpu_programs OUT NAME...: makes the programs NAME... (m2bench, bench_*, <concern>_gpu_tests)
# ready and sets m2b_bin[NAME] to each one's path. With M2B_PREBUILT, a folder holding them all
# (built on another machine against the same LibTorch, with the shared libraries they need that
# this machine lacks), they are used as they are when every one loads here; otherwise they are
# built in $build. Saves the build's minutes of a short device lease.
declare -A m2b_bin
m2b_gpu_programs() {
  local out="$1" name absent=() libs deps; shift
  if [ -n "${M2B_PREBUILT:-}" ]; then
    export LD_LIBRARY_PATH="$M2B_PREBUILT:$torch_prefix/../../lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    : >"$out/ldd.txt"
    for name in "$@"; do
      if [ ! -x "$M2B_PREBUILT/$name" ]; then
        absent+=("$name")
      else
        deps=$(ldd "$M2B_PREBUILT/$name" 2>&1)
        printf '%s:\n%s\n' "$name" "$deps" >>"$out/ldd.txt"
        if [[ "$deps" == *"not found"* ]]; then absent+=("$name"); else m2b_bin[$name]="$M2B_PREBUILT/$name"; fi
      fi
    done
    if [ ${#absent[@]} = 0 ]; then
      echo "== using the programs prebuilt in $M2B_PREBUILT"; rm -f "$out/ldd.txt"; return 0
    fi
    libs=$(grep -o '[^[:space:]]* => not found' "$out/ldd.txt" | cut -d' ' -f1 | sort -u | tr '\n' ' ')
    echo "== prebuilt programs not usable here: ${absent[*]}${libs:+ (libraries not found: $libs)}; building"
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
    m2b_bounded compute-sanitizer --tool "$tool" --error-exitcode 9 "$program" "[sanitize]" >"$out/sanitize_$tool.log" 2>&1
    tool_rc=$?
    [ $tool_rc -ne 0 ] && rc=1
    echo "compute-sanitizer $tool rc=$tool_rc: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitize_$tool.log" | tail -1)"
  done
  return $rc
}
