#!/usr/bin/env bash
# Stop what .ci/slurm-up.sh started: slurmd, slurmctld, and munged when that script started it.
# Each by the pid in its pid file (SIGTERM, then SIGKILL after a bounded wait). Safe to run when
# nothing runs. slurm.conf stays (slurm-up.sh replaces its own file on the next run).
set -uo pipefail
STATE=/run/blastune-slurm

stop_pidfile() {  # stop_pidfile NAME FILE: end the process FILE names, if it is NAME
  local name=$1 file=$2 pid
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
    if [ -e "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null; fi
    echo "slurm-down: stopped $name ($pid)"
  fi
  rm -f "$file"
}

stop_pidfile slurmd "$STATE/slurmd.pid"
stop_pidfile slurmctld "$STATE/slurmctld.pid"
if [ -e "$STATE/started-munged" ]; then
  stop_pidfile munged /run/munge/munged.pid
  rm -f "$STATE/started-munged"
fi
exit 0
