#!/usr/bin/env bash
# A single-node Slurm on this host for the tests that submit real jobs (tests/test_slurm_real.py).
#
# As root, with Debian's slurmctld slurmd slurm-client munge installed (.ci/run installs them):
# a munge key, a minimal /etc/slurm/slurm.conf (this host the controller and its one node, as
# `slurmd -C` describes it; partitions debug (default) and short; no accounting, no cgroup plugins),
# then munged, slurmctld and slurmd started directly (no systemd), and a bounded wait until sinfo
# shows the node idle. Running it again first stops what an earlier run started (.ci/slurm-down.sh),
# so it can be run by hand as often as wanted. Exit status 0: Slurm is up; otherwise the reason is
# on stderr with the daemons' last log lines.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
STATE=/run/blastune-slurm          # pid files, logs and what this script started
SPOOL=/var/spool/blastune-slurm    # slurmctld's state and slurmd's spool
CONF=/etc/slurm/slurm.conf
MARK="# Written by blastune's .ci/slurm-up.sh"
WAIT_S=${SLURM_UP_WAIT_S:-60}

fail() { echo "slurm-up: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "must run as root (it writes $CONF and starts daemons)"
for exe in munged slurmctld slurmd sinfo scontrol sbatch; do
  command -v "$exe" >/dev/null ||
    fail "$exe not found: apt-get install slurmctld slurmd slurm-client munge"
done
if [ -e "$CONF" ] && ! grep -qxF "$MARK" "$CONF"; then
  fail "$CONF exists and was not written by this script: not replacing it"
fi

bash "$HERE/slurm-down.sh" >/dev/null  # idempotent: start from nothing of ours running
mkdir -p "$STATE" "$SPOOL/ctld" "$SPOOL/d"

# --- munge: one key, one daemon ---
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=128 count=1 status=none
fi
chown munge:munge /etc/munge /etc/munge/munge.key
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- munged
  echo munged >"$STATE/started-munged"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n | unmunge >/dev/null || fail "munged does not answer (see /var/log/munge/munged.log)"
fi

# --- slurm.conf: this host is the controller and the only node ---
host=$(hostname -s)
node=$(slurmd -C | grep '^NodeName=') || fail "slurmd -C did not describe this node"
case "$node" in
  "NodeName=$host "*) ;;
  *) fail "slurmd -C names another host than $host: $node" ;;
esac
tmp=$(mktemp "$CONF.XXXXXX")
cat >"$tmp" <<EOF
$MARK
# for the tests; .ci/slurm-down.sh stops it. Remove this file to use your own configuration.
ClusterName=blastune-ci
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
# sbatch --wait polls every 2 s, and 4x slower each time while that stays under MinJobAge/2: at 4 s
# it keeps polling every 2 s, where the default 300 s stretches a 10 s job's wait to 42 s.
MinJobAge=4
$node
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=short Nodes=ALL MaxTime=10 State=UP
EOF
chmod 0644 "$tmp"
mv -f "$tmp" "$CONF"

# --- the daemons: -c starts the controller with no jobs left from an earlier run ---
logs() { tail -n 5 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 2>/dev/null || true; }
slurmctld -c || { rc=$?; logs; fail "slurmctld did not start (exit status $rc)"; }
slurmd || { rc=$?; logs; fail "slurmd did not start (exit status $rc)"; }
deadline=$((SECONDS + WAIT_S))
while [ "$SECONDS" -lt "$deadline" ]; do
  # one line per partition the node is in: the same state twice
  state=$(timeout 5 sinfo -h -N -n "$host" -o %T 2>/dev/null | sort -u | paste -sd, || true)
  case "$state" in
    idle) echo "slurm-up: Slurm $(slurmctld -V | cut -d' ' -f2) is up: node $host idle" \
               "($(sinfo -h -o %P | paste -sd' ')), ${SECONDS} s after start"; exit 0 ;;
    down*|drain*) timeout 5 scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
  esac
  sleep 1
done
logs
fail "node $host not idle after $WAIT_S s (state: '${state:-no answer}')"
