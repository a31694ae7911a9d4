#!/usr/bin/env bash
# The main job: set up what is missing, build, and run the quickstart.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$M2BENCH_ROOT/scripts/setup.sh"
"$M2BENCH_ROOT/scripts/build.sh"
cd "$M2BENCH_ROOT"
"$M2BENCH_BUILD/m2bench" data --task s3 --length 8 --count 3
