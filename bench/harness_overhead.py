"""How much CPU and how many wake-ups ``blastune jobs``' own harness costs a process layout's batch.

The layout's host process (``measure/jobs/layout_process.py``) hands tasks to its worker processes; whatever
it does while the workers hold every core competes with them. This script drives one layout's host
through the public ``LayoutHost`` handle -- the same calls ``jobs`` makes -- and reads, around each
batch, the kernel's per-thread counters (``/proc/PID/task/TID/schedstat``: ns on a CPU, ns waiting
for one, time slices) of the host and of its workers. CPU time and slice counts do not depend on
what else the machine runs, so this compares two versions of the harness even on a busy machine
(the run-queue *wait* does depend on it, and is printed beside them).

    python bench/harness_overhead.py --layout process:2x1 --tasks 800 --batches 5
    PYTHONPATH=/path/to/older/checkout python bench/harness_overhead.py ...   # the same, older code
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def counters(pid: int) -> tuple[int, int, int]:
    """(run ns, wait ns, slices) summed over the threads of ``pid``."""
    run = wait = slices = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                r, w, s = (int(x) for x in f.read().split()[:3])
        except (OSError, ValueError):
            continue
        run, wait, slices = run + r, wait + w, slices + s
    return run, wait, slices


def main() -> None:
    import blastune
    from blastune.measure.jobs.layout_handle import LayoutHost
    from blastune.measure.jobs.layouts import parse_layouts
    from blastune.measure.workloads import make_workload

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layout", default="process:2x1")
    ap.add_argument("--op", default="dot")
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--tasks", type=int, default=800)
    ap.add_argument("--batches", type=int, default=5)
    args = ap.parse_args()
    layout = parse_layouts(args.layout)[0]
    cores = len(os.sched_getaffinity(0))
    host = LayoutHost(layout)
    rows = []
    try:
        info = host.start(make_workload(op=args.op, size=args.size), cores)
        workers = list(info.get("pids") or [])
        wanted = min(cores, layout.workers * (layout.threads or 1))
        for _ in range(args.batches):
            h0, w0 = counters(host.pid), [counters(p) for p in workers]
            t0 = time.perf_counter()
            host.batch(args.tasks)
            wall = time.perf_counter() - t0
            h1, w1 = counters(host.pid), [counters(p) for p in workers]
            wr = sum(b[0] - a[0] for a, b in zip(w0, w1)) / 1e9
            ww = sum(b[1] - a[1] for a, b in zip(w0, w1)) / 1e9
            rows.append(
                {
                    "wall_s": wall,
                    "host_cpu_ms": (h1[0] - h0[0]) / 1e6,
                    "host_slices": h1[2] - h0[2],
                    "host_wait_pct": 100 * (h1[1] - h0[1]) / 1e9 / wall,
                    "host_share_pct": 100 * (h1[0] - h0[0]) / 1e9 / (wall * wanted),
                    "workers_wait_pct": 100 * ww / wall,
                    "workers_busy_cores": wr / wall,
                }
            )
            time.sleep(0.2)
    finally:
        host.close()
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(
        json.dumps(
            {
                "blastune": os.path.dirname(blastune.__file__),
                "layout": layout.spec,
                "tasks": args.tasks,
                "cores": cores,
                "load1": os.getloadavg()[0],
                "median": {k: round(v, 3) for k, v in med.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
