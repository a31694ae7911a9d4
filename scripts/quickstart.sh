#!/usr/bin/env bash
# The main job: set up what is missing, build, train the quickstart suite (finished runs are
# skipped, unfinished ones resume), then write its table and figures.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$M2BENCH_ROOT/scripts/setup.sh"
"$M2BENCH_ROOT/scripts/build.sh"
cd "$M2BENCH_ROOT"
suite=experiments/quickstart.yaml
"$M2BENCH_BUILD/m2bench" run "$suite" "$@"
"$M2BENCH_BUILD/m2bench" table "$suite"
"$M2BENCH_BUILD/m2bench" plot "$suite"
echo "quickstart: table in results/quickstart/table.{md,csv,tex}, figures in plots/quickstart/"
