#!/usr/bin/env python
"""Does ``blastune.limit`` really change how many BLAS threads compute? Counted by thread CPU time.

For each limit -- ``limit(1)``, ``limit(4)``, ``limit(jobs=4)`` by default -- this process runs
dgemm products for about a second inside the limit and reads every thread's CPU time and run-queue
wait from the kernel (``/proc/self/task/*/schedstat``) before and after. A thread that was runnable
-- on a CPU or waiting for one -- at least a quarter of the wall time counts as running: a BLAS
worker with its share of a product is runnable nearly all the time (on a busy machine it waits
instead of running, and still counts), an idle pool thread sleeps and wakes for a few percent.
Beside it: the count the library reports inside the limit (threadpoolctl), and the anchor, the
library default measured the same way.

    python bench/limit_truth.py [--size 1000] [--seconds 1] [--limits 1,4,jobs=4] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time

import numpy as np
import threadpoolctl
from tabulate import tabulate

import blastune
from blastune.facts.schedstat import available, thread_times

# runnable (on a CPU or waiting for one) this share of the wall time: computing, not waking up
RUNNING_SHARE = 0.25


def _kwargs(spec: str) -> dict:
    """'4' -> {'n': 4}; 'jobs=4' -> {'jobs': 4}; 'default' -> no limit."""
    if spec == "default":
        return {}
    if spec.startswith("jobs="):
        return {"jobs": int(spec[5:])}
    return {"n": int(spec)}


def measure(spec: str, size: int, seconds: float) -> dict:
    a = np.random.default_rng(0).random((size, size))
    kw = _kwargs(spec)
    ctx = blastune.limit(**kw) if kw else contextlib.nullcontext()
    with ctx:
        reported = sorted(
            {
                p["num_threads"]
                for p in threadpoolctl.threadpool_info()
                if p.get("user_api") == "blas"
            }
        )
        a @ a  # the pool wakes up at its new size before the timed window
        # threads a shrunk pool no longer uses spin before they sleep (OpenBLAS: 2^28 cycles,
        # about 0.1 s): let them park, or the window counts the previous limit's tail
        time.sleep(0.3)
        before = thread_times(os.getpid())
        t0 = time.perf_counter()
        products = 0
        while time.perf_counter() - t0 < seconds:
            a @ a
            products += 1
        wall = time.perf_counter() - t0
        after = thread_times(os.getpid())
    used = {t: after[t] - before[t] for t in after if t in before}
    shares = sorted(((d.run_ns + d.wait_ns) / 1e9 / wall for d in used.values()), reverse=True)
    waited = sum(d.wait_ns for d in used.values()) / 1e9 / wall
    return {
        "limit": spec,
        "reported": reported,
        "running": sum(s >= RUNNING_SHARE for s in shares),
        "top_shares": [round(s, 2) for s in shares[:8]],
        "wait_cpus": round(waited, 2),
        "gflops": round(2 * size**3 * products / wall / 1e9, 1),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--limits", default="default,1,4,jobs=4")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = ap.parse_args()
    if not available():
        raise SystemExit(
            "no per-thread schedstat in this kernel (/proc/self/task/*/schedstat): nothing to count"
        )
    cpu = blastune.cpu_info()
    rows = [measure(spec, args.size, args.seconds) for spec in args.limits.split(",")]
    if args.json:
        doc = {"usable_cores": cpu.usable_cores, "size": args.size, "rows": rows}
        print(json.dumps(doc, indent=2))
        return
    print(
        f"dgemm {args.size}x{args.size} for {args.seconds:g} s per limit on {cpu.usable_cores} "
        "usable cores; "
        f"a thread runs when it was runnable >= {RUNNING_SHARE:.0%} of the wall time"
    )
    table = [
        [
            r["limit"],
            ",".join(map(str, r["reported"])),
            r["running"],
            " ".join(f"{s:.2f}" for s in r["top_shares"]),
            f"{r['wait_cpus']:.2f}",
            r["gflops"],
        ]
        for r in rows
    ]
    print(
        tabulate(
            table,
            headers=[
                "limit",
                "library says",
                "threads running",
                "busiest threads (runnable/wall)",
                "waiting (CPUs)",
                "GFLOP/s",
            ],
            tablefmt="github",
            disable_numparse=True,
        )
    )


if __name__ == "__main__":
    main()
