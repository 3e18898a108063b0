#!/usr/bin/env bash
# A one-node SLURM on this machine, to try the launchers here and to test them on a real
# scheduler (tests/test_cluster.py; .ci/run brings it up before `make check`).
#
#   experiments/cluster/local_slurm.sh up DIR       # then: export SLURM_CONF=DIR/slurm.conf
#   experiments/cluster/local_slurm.sh status DIR
#   experiments/cluster/local_slurm.sh down DIR
#
# `up` installs Debian's slurm-wlm and munge with apt-get if they are missing (as root; as
# anyone else it says what to install), writes DIR/slurm.conf for this node (its CPU count and
# memory, one partition `local`), keeps the daemons' keys, state, logs and pid files under DIR,
# starts munged, slurmctld and slurmd, and waits until the node takes jobs. `down` cancels the
# node's jobs and stops the three daemons by the pids in DIR. Both do nothing when there is
# nothing to do, so they can be run again. slurmd must run as root: it starts jobs as their users.
set -euo pipefail

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  echo "usage: $0 up|down|status DIR"
}

die() {
  echo "local_slurm.sh: error: $*" >&2
  exit 1
}

[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in
  -h|--help|help) usage; exit 0 ;;
  up|down|status) ;;
  *) usage >&2; die "unknown command '$1'; use up, down or status" ;;
esac
[ $# -eq 2 ] || die "$1 needs the folder that holds the cluster's config and state, e.g. $0 $1 runs/slurm"
COMMAND=$1
DIR=$(realpath -m "$2")
export SLURM_CONF=$DIR/slurm.conf
NODE=$(hostname -s)
DAEMONS=(slurmd slurmctld munged)   # the order they stop in; they start in the reverse one

pid_of() {  # the pid of daemon $1 if it is running from this DIR, else nothing
  local pid
  pid=$(cat "$DIR/run/$1.pid" 2>/dev/null) || return 0
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
     && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$1"; then
    echo "$pid"
  fi
}

install_packages() {
  local missing=()
  for cmd in munged slurmctld slurmd sbatch; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    die "${missing[*]} not found: install SLURM and MUNGE (Debian, Ubuntu: apt-get install slurm-wlm munge, as root), then run this again"
  fi
  echo "installing slurm-wlm and munge"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_config() {
  local memory
  memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  mkdir -p "$DIR/run" "$DIR/log" "$DIR/state" "$DIR/spool"
  # munged wants every folder above its socket open to all (mktemp -d makes one that is not)
  chmod go+x "$DIR"
  install -d -m 755 "$DIR/munge"
  if [ ! -s "$DIR/munge/munge.key" ]; then
    mungekey --create --keyfile="$DIR/munge/munge.key"
    chmod 400 "$DIR/munge/munge.key"
  fi
  cat >"$DIR/slurm.conf" <<EOF
# A one-node cluster, written by experiments/cluster/local_slurm.sh.
ClusterName=local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it starts again (default 120 s).
AuthInfo=socket=$DIR/munge/munge.socket.2,cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
# Look at pending jobs every 2 s (defaults: 60 s, backfill 30 s), so that a dependent or requeued
# job starts as soon as it may.
SchedulerParameters=sched_interval=2,bf_interval=2
SlurmdParameters=config_overrides
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

up() {
  install_packages
  [ "$(id -u)" -eq 0 ] || die "slurmd must run as root (it starts each job as its user); run this as root"
  write_config
  if [ -z "$(pid_of munged)" ]; then
    munged --socket="$DIR/munge/munge.socket.2" --key-file="$DIR/munge/munge.key" \
      --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/seed"
  fi
  [ -n "$(pid_of slurmctld)" ] || slurmctld -f "$SLURM_CONF"
  [ -n "$(pid_of slurmd)" ] || slurmd -f "$SLURM_CONF"
  for _ in $(seq 100); do   # the daemons' children write their pid files
    [ -s "$DIR/run/slurmctld.pid" ] && [ -s "$DIR/run/slurmd.pid" ] && break
    sleep 0.1
  done
  sleep 1
  for daemon in munged slurmctld slurmd; do   # one that stopped at once (a port in use, a bad key)
    [ -n "$(pid_of "$daemon")" ] || die "$daemon did not stay up; see $DIR/log/$daemon.log"
  done
  local state=""
  for _ in $(seq 60); do
    state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null || true)
    case "$state" in idle*|mixed*|allocated*) break ;; esac
    sleep 0.5
  done
  case "$state" in
    idle*|mixed*|allocated*) ;;
    *) status >&2
       die "node $NODE is '${state:-unknown}' after 30 s, not taking jobs; see $DIR/log/slurmctld.log and slurmd.log" ;;
  esac
  echo "SLURM is up: node $NODE, partition local; to use it: export SLURM_CONF=$SLURM_CONF"
}

down() {
  if [ -n "$(pid_of slurmctld)" ]; then
    local jobs
    jobs=$(squeue -h -o %i 2>/dev/null || true)
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086  # one job id a word
      scancel $jobs || true
      for _ in $(seq 30); do
        [ -z "$(squeue -h -o %i 2>/dev/null || true)" ] && break
        sleep 1
      done
    fi
  fi
  local pid
  for daemon in "${DAEMONS[@]}"; do
    pid=$(pid_of "$daemon")
    [ -n "$pid" ] || continue
    kill "$pid"
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$daemon (pid $pid) did not stop in 10 s of SIGTERM; killing it" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/run/$daemon.pid"
  done
  echo "SLURM is down ($DIR)"
}

status() {
  local pid running=0
  for daemon in munged slurmctld slurmd; do
    pid=$(pid_of "$daemon")
    if [ -n "$pid" ]; then
      echo "$daemon: running, pid $pid"
      running=$((running + 1))
    else
      echo "$daemon: stopped"
    fi
  done
  [ -n "$(pid_of slurmctld)" ] && sinfo || true
  [ "$running" -eq 3 ]
}

"$COMMAND"
