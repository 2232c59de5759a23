#!/usr/bin/env python
"""K concurrent BLAS processes: library default threads vs ``blastune.limit(jobs=K)``, fixed total work.

Each of K processes runs the same loop of n x n matrix products. With the default, every process's
BLAS starts one thread per core, so K processes fight over the cores; with ``limit(jobs=K)`` each
gets usable_cores // K threads. Anchor: the default layout, measured in the same run.

    python bench/oversubscription.py [--procs K] [--size 300] [--calls 400]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from tabulate import tabulate

WORKER = r"""
import sys, time, numpy as np
size, calls, jobs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
a = np.random.default_rng(0).standard_normal((size, size))
def work():
    for _ in range(calls):
        a @ a
if jobs:
    import blastune
    with blastune.limit(jobs=jobs):
        work()
else:
    work()
"""


def run_layout(procs, size, calls, jobs):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    }
    t0 = time.perf_counter()
    children = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(size), str(calls), str(jobs)], env=env)
        for _ in range(procs)
    ]
    codes = [c.wait() for c in children]
    if any(codes):
        raise SystemExit(f"a worker failed: exit codes {codes}")
    return time.perf_counter() - t0


def main():
    import blastune

    cores = blastune.cpu_info().usable_cores
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=cores)
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    k = args.procs
    per = max(1, cores // k)
    default, limited = [], []
    for _ in range(args.rounds):  # interleaved, so drift hits both layouts alike
        default.append(run_layout(k, args.size, args.calls, 0))
        limited.append(run_layout(k, args.size, args.calls, k))
    d, lim = sorted(default)[len(default) // 2], sorted(limited)[len(limited) // 2]
    flops = 2 * args.size**3 * args.calls * k
    rows = [
        [
            f"{k} procs x library default ({cores} threads each)",
            f"{d:.2f}",
            f"{flops / d / 1e9:.1f}",
            "1.00x",
        ],
        [
            f"{k} procs x blastune.limit(jobs={k}) ({per} thread each)",
            f"{lim:.2f}",
            f"{flops / lim / 1e9:.1f}",
            f"{d / lim:.2f}x",
        ],
    ]
    print(
        f"{k} processes x {args.calls} products of {args.size}x{args.size} float64 on {cores} usable cores, "
        f"median of {args.rounds} rounds"
    )
    print(
        tabulate(
            rows,
            headers=["layout", "wall s", "GFLOP/s", "speed-up"],
            tablefmt="github",
            disable_numparse=True,
        )
    )
    print(
        f"\nanchor (default threads) {d:.2f} s; limit(jobs={k}) {lim:.2f} s -> {d / lim:.1f}x faster"
    )


if __name__ == "__main__":
    main()
