#!/usr/bin/env bash
# Formats the C++ and CUDA sources with clang-format (style: .clang-format). With --check it
# changes nothing, lists the files that are not formatted and exits non-zero if there are any.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# clang-format 14 (Debian 12's) is the version the sources were formatted with; others differ.
cf="${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}"
[ -n "$cf" ] || { echo "format: no clang-format; run scripts/setup.sh" >&2; exit 1; }
cd "$M2BENCH_ROOT"
mapfile -d '' files < <(git ls-files -z -- '*.cpp' '*.h' '*.hpp' '*.cu' '*.cuh')
case "${1:-}" in
  "") "$cf" -i --style=file "${files[@]}" ;;
  --check)
    bad=0
    for f in "${files[@]}"; do
      "$cf" --style=file --dry-run --Werror "$f" >/dev/null 2>&1 || { echo "$f"; bad=1; }
    done
    exit "$bad" ;;
  *) echo "usage: scripts/format.sh [--check]" >&2; exit 2 ;;
esac
