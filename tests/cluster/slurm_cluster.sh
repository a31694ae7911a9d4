#!/usr/bin/env bash
# A one-node Slurm cluster on localhost for the `slurm` tests, from Debian's slurm-wlm and munge
# (scripts/setup.sh installs them when it runs as root):
#   slurm_cluster.sh start DIR   writes DIR/slurm.conf, starts munged, slurmctld and slurmd with
#                                their state and logs in DIR, and waits until the node is idle;
#                                clients then find the cluster through SLURM_CONF=DIR/slurm.conf
#   slurm_cluster.sh stop DIR    stops the daemons it started there
# Exits 77 (what ctest reports as skipped) where a cluster cannot be started here: not root, or
# the packages are missing. Its own munged, ports and files, so that a Slurm or munge that the
# machine runs already is left alone.
set -euo pipefail
action="${1:?usage: slurm_cluster.sh start|stop DIR}"
dir="$(mkdir -p "${2:?usage: slurm_cluster.sh start|stop DIR}" && cd "$2" && pwd)"

stop() {
  local name pid
  for name in slurmd slurmctld munged; do
    [ -f "$dir/$name.pid" ] || continue
    pid="$(cat "$dir/$name.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/$name.pid"
  done
}

skip() { echo "slurm_cluster: $*; the slurm tests are skipped" >&2; exit 77; }

# Prints the daemon's log and fails: the cluster was meant to start here and did not.
fail() { echo "slurm_cluster: $1 did not start; its log:" >&2; cat "$2" >&2 || true; stop; exit 1; }

if [ "$action" = stop ]; then stop; exit 0; fi
[ "$action" = start ] || { echo "slurm_cluster: unknown action '$action' (valid: start, stop)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || skip "not root (slurmd must run as root)"
for program in munged slurmctld slurmd sbatch; do
  command -v "$program" >/dev/null || skip "$program is missing (apt-get install slurm-wlm munge)"
done
stop  # daemons left by an earlier start in the same folder

# munged refuses a socket folder or key that others may write, and runs as the munge user.
mkdir -p "$dir/munge" "$dir/state" "$dir/spool"
[ -f /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge "$dir/munge"
chmod 0755 "$dir/munge"
socket="$dir/munge/munge.socket"
runuser -u munge -- munged --socket="$socket" --pid-file="$dir/munge/munged.pid" \
  --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" \
  || fail munged "$dir/munge/munged.log"
cp "$dir/munge/munged.pid" "$dir/munged.pid"

# Node size as slurmd measures it: a node declared larger than the machine is never used.
cpus="$(nproc)"
memory="$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')"
cat >"$dir/slurm.conf" <<CONF
ClusterName=m2bench-test
SlurmctldHost=localhost
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
# This munged, not the machine's; credentials expire after 5 s, so a requeued task may start
# again within seconds rather than after the default 120.
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket,cred_expire=5
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SchedulerParameters=bf_interval=1,sched_interval=1
ReturnToService=2
NodeName=localhost CPUs=$cpus RealMemory=$(( memory * 9 / 10 )) State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -D -f "$SLURM_CONF" >"$dir/slurmctld.out" 2>&1 &
slurmd -D -N localhost -f "$SLURM_CONF" >"$dir/slurmd.out" 2>&1 &
for _ in $(seq 100); do
  [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && exit 0
  sleep 0.2
done
fail "the node (sinfo: $(sinfo -h -o %T 2>&1 || true))" "$dir/slurmctld.log"
