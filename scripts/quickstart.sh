#!/usr/bin/env bash
# The main job: set up what is missing, build, train the quickstart suite (finished runs are
# skipped, unfinished ones resume), then write its table and figures.
# The runs train side by side, one process per core with one thread each (up to 4, or
# M2BENCH_QUICKSTART_JOBS): small models gain little from intra-op threads, and two runs on two
# cores finish in about 7 minutes where one after the other take about 10. Arguments (--fresh,
# say) go to every process; the first one's progress is shown, the others log to
# build/quickstart-*.log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$M2BENCH_ROOT/scripts/setup.sh"
"$M2BENCH_ROOT/scripts/build.sh"
cd "$M2BENCH_ROOT"
suite=experiments/quickstart.yaml
cores=$(nproc)
jobs="${M2BENCH_QUICKSTART_JOBS:-$(( cores < 4 ? cores : 4 ))}"
# Ctrl-C reaches every process of the group: each stops after its step with a checkpoint.
helpers=()
"$M2BENCH_BUILD/m2bench" run "$suite" --threads 1 "$@" &
first=$!
for i in $(seq 2 "$jobs"); do
  sleep 2  # the first process claims its run before the next one looks
  "$M2BENCH_BUILD/m2bench" run "$suite" --threads 1 "$@" >"$M2BENCH_BUILD/quickstart-$i.log" 2>&1 &
  helpers+=($!)
done
status=0
wait "$first" || status=$?
for pid in "${helpers[@]}"; do wait "$pid" || status=$?; done
[ "$status" -eq 0 ] || { echo "quickstart: a training process failed (logs: $M2BENCH_BUILD/quickstart-*.log)"; exit "$status"; }
"$M2BENCH_BUILD/m2bench" table "$suite"
"$M2BENCH_BUILD/m2bench" plot "$suite"
echo "quickstart: table in results/quickstart/table.{md,csv,tex}, figures in plots/quickstart/"
