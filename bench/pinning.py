#!/usr/bin/env python
"""Two concurrent 1-thread BLAS jobs, pinned (each on its own CPU, blastune's layout) vs unpinned.

Each job is a fresh python with OPENBLAS_NUM_THREADS=1 (and OMP/MKL) that imports numpy, warms up,
then waits for "go" and runs --calls products of --size x --size matrices. Per job it reports, for the
timed part only: wall time, run-queue wait (schedstat field 2, summed over its threads: time it could
run but had no CPU) and migrations (se.nr_migrations in /proc/self/task/*/sched). A pair's wall is its
slower job. Rounds interleave the two modes (order alternating); the table shows medians, and the
unpinned mode is the anchor of the ratio. A pair during which other programs used more than 5% of
its wall in CPU time (/proc/stat busy time minus the two jobs' own, from schedstat) is counted as
disturbed, and the "others' CPU" column says how much they took.

    python bench/pinning.py [--size 300] [--calls 600] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from tabulate import tabulate

WORKER = r"""
import json, os, sys, time
import numpy as np

def waits():
    run = wait = migrations = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = open(f"/proc/self/task/{tid}/schedstat").read().split()
            run += int(fields[0])
            wait += int(fields[1])
            for line in open(f"/proc/self/task/{tid}/sched"):
                if line.startswith("se.nr_migrations"):
                    migrations += int(line.split(":")[1])
        except (OSError, ValueError, IndexError):
            pass
    return run, wait, migrations

size, calls = int(sys.argv[1]), int(sys.argv[2])
a = np.random.default_rng(0).standard_normal((size, size))
for _ in range(20):
    a @ a                                   # warm-up: pages touched, kernels chosen
print("ready", flush=True)
sys.stdin.readline()                        # "go"
r0, w0, m0 = waits()
t0 = time.perf_counter()
for _ in range(calls):
    a @ a
wall = time.perf_counter() - t0
r1, w1, m1 = waits()
mask = open("/proc/self/status").read().split("Cpus_allowed_list:")[1].split()[0]
print(json.dumps({"wall": wall, "run_ns": r1 - r0, "wait_ns": w1 - w0, "migrations": m1 - m0, "mask": mask}),
      flush=True)
"""


def busy_s() -> float | None:
    """CPU time the whole machine has spent busy (all CPUs, /proc/stat), in seconds."""
    try:
        fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_pair(size: int, calls: int, cpusets) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        env[var] = "1"
    procs = []
    for cpus in cpusets:
        pin = (lambda c=cpus: os.sched_setaffinity(0, c)) if cpus else None
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(size), str(calls)],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                preexec_fn=pin,
            )
        )
    try:
        for p in procs:
            if p.stdout.readline().strip() != "ready":
                raise SystemExit("a worker failed to start")
        busy0, t0 = busy_s(), time.perf_counter()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [json.loads(p.stdout.readline()) for p in procs]
        elapsed, busy1 = time.perf_counter() - t0, busy_s()
    finally:
        for p in procs:
            p.kill() if p.poll() is None and p.wait(timeout=60) is None else None
    # CPU time the machine spent on anything but our two jobs while they ran
    ours = sum(r["run_ns"] for r in results) / 1e9
    others = None if busy0 is None or busy1 is None else max(0.0, (busy1 - busy0) - ours)
    return {
        "wall": max(r["wall"] for r in results),
        "wait": sum(r["wait_ns"] for r in results) / 1e9,
        "migrations": sum(r["migrations"] for r in results),
        "masks": [r["mask"] for r in results],
        "disturbed": others is not None and others > 0.05 * elapsed,
        "others_wait": others,
    }  # CPU s


def main():
    from blastune.control.pinning import plan_layout
    from blastune.facts.topology import read_topology

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--calls", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    topo = read_topology()
    sets = [s.cpus for s in plan_layout(2, topo)]
    print(
        f"machine: {topo.summary()}; pinned layout: {[s for s in sets]}; "
        f"{args.rounds} rounds of 2 jobs x {args.calls} products {args.size}x{args.size}, 1 thread each"
    )
    modes = {"unpinned": [None, None], "pinned": sets}
    got = {m: [] for m in modes}
    for r in range(args.rounds):
        order = list(modes) if r % 2 == 0 else list(reversed(modes))
        for m in order:
            got[m].append(run_pair(args.size, args.calls, modes[m]))
    rows = []
    for m, runs in got.items():
        med = {k: statistics.median(x[k] for x in runs) for k in ("wall", "wait", "migrations")}
        spread = max(x["wall"] for x in runs) - min(x["wall"] for x in runs)
        disturbed = sum(x["disturbed"] for x in runs)
        rows.append(
            [
                m,
                f"{med['wall']:.3f}",
                f"{spread:.3f}",
                f"{1000 * med['wait']:.1f}",
                f"{med['migrations']:.0f}",
                f"{disturbed}/{len(runs)}",
                f"{statistics.median(x['others_wait'] or 0 for x in runs):.2f}",
                " ".join(runs[0]["masks"]),
            ]
        )
    print(
        tabulate(
            rows,
            [
                "mode",
                "wall s",
                "wall range s",
                "run-queue wait ms",
                "migrations",
                "disturbed",
                "others' CPU s",
                "CPUs of the jobs",
            ],
        )
    )
    anchor = statistics.median(x["wall"] for x in got["unpinned"])
    pinned = statistics.median(x["wall"] for x in got["pinned"])
    print(f"\npinned / unpinned wall (median): {pinned / anchor:.3f}  (anchor: unpinned, same run)")
    if any(x["disturbed"] for runs in got.values() for x in runs):
        print(
            "note: pairs marked disturbed ran while other programs used the CPUs too; their wall and "
            "wait include that competition (medians over wall, wait, migrations; all figures as measured)"
        )


if __name__ == "__main__":
    main()
