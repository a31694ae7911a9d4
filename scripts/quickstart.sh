#!/usr/bin/env bash
# The main job: set up what is missing, build, train the quickstart suite (finished runs are
# skipped, unfinished ones resume), then write its table and figures.
# The runs train side by side, one worker process per core with one thread each (up to 4, or
# M2BENCH_QUICKSTART_JOBS: `m2bench run --workers`): small models gain little from intra-op
# threads, and two runs on two cores finish in about 7 minutes where one after the other take
# about 10. Arguments (--fresh, say) go to `m2bench run`; every line a worker prints carries its
# label ("[worker 2] ...").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$M2BENCH_ROOT/scripts/setup.sh"
"$M2BENCH_ROOT/scripts/build.sh"
cd "$M2BENCH_ROOT"
suite=experiments/quickstart.yaml
cores=$(nproc)
jobs="${M2BENCH_QUICKSTART_JOBS:-$(( cores < 4 ? cores : 4 ))}"
# Ctrl-C stops every worker after its step, with a checkpoint.
"$M2BENCH_BUILD/m2bench" run "$suite" --workers "$jobs" "$@" ||
  { echo "quickstart: training did not finish (its output is above)"; exit 1; }
"$M2BENCH_BUILD/m2bench" table "$suite"
"$M2BENCH_BUILD/m2bench" plot "$suite"
echo "quickstart: table in results/quickstart/table.{md,csv,tex}, figures in plots/quickstart/"
