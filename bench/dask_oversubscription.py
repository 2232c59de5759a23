"""Dask oversubscription: many small ``dot`` tasks on 2 worker processes, with and without blastune.

    python bench/dask_oversubscription.py [--tasks 200] [--size 300] [--dots 10] [--repeat 3]

Three clusters, each LocalCluster(n_workers=2, threads_per_worker=1, processes=True):
  * library default -- the nanny's pre-spawn-environ switched off and no thread variables set, so
    each worker's OpenBLAS starts one thread per core: 2 workers x <cores> threads on <cores> cores
    (what a worker without a nanny, or with a nanny configured not to set them, runs);
  * dask nanny default -- dask's shipped pre-spawn-environ (OMP/MKL/OPENBLAS_NUM_THREADS=1);
  * blastune plugin -- nanny env off as in the first row, then ``limit_workers(client)``: each worker
    gets usable cores // task threads on its host.
The anchor is the library-default row; "speed-up" is its wall time over each row's.
Timing: one warm-up job, then the median of --repeat jobs; spread = (max - min) / median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from blastune.facts.environment import THREAD_VARS  # noqa: E402


def dot_task(i, size, dots):
    import numpy as np

    rng = np.random.default_rng(i)
    a = rng.standard_normal((size, size))
    b = rng.standard_normal((size, size))
    acc = 0.0
    for _ in range(dots):
        acc += float((a @ b)[0, 0])
    return acc


def blas_threads():
    import numpy  # noqa: F401

    import blastune

    return sorted(set(blastune.get_threads().values()))


def run_mode(name, pre_spawn, plugin, args):
    import dask
    import distributed
    from dask import delayed

    config = {} if pre_spawn is None else {"distributed.nanny.pre-spawn-environ": pre_spawn}
    with dask.config.set(config):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=40,
        )
        try:
            with distributed.Client(cluster) as client:
                if plugin:
                    from blastune.integrations.dask import limit_workers

                    limit_workers(client)
                threads = sorted({t for ts in client.run(blas_threads).values() for t in ts})

                def job():
                    parts = [delayed(dot_task)(i, args.size, args.dots) for i in range(args.tasks)]
                    t0 = time.perf_counter()
                    dask.compute(*parts)
                    return time.perf_counter() - t0

                job()  # warm-up: imports, first BLAS calls, thread pools
                times = [job() for _ in range(args.repeat)]
        finally:
            cluster.close()
    med = statistics.median(times)
    return {
        "mode": name,
        "threads": threads,
        "median": med,
        "spread": (max(times) - min(times)) / med,
        "times": times,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--dots", type=int, default=10, help="dot products per task")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for (
        var
    ) in THREAD_VARS:  # the workers inherit this environment: start them with no thread settings
        os.environ.pop(var, None)

    from tabulate import tabulate

    from blastune.facts.cpu import cpu_info

    cpu = cpu_info()
    rows = [
        run_mode("library default (nanny env off)", {}, False, args),
        run_mode("dask nanny default (=1 thread)", None, False, args),
        run_mode("blastune plugin (nanny env off)", {}, True, args),
    ]
    anchor = rows[0]["median"]
    flops = 2.0 * args.size**3 * args.dots * args.tasks
    table = [
        [
            r["mode"],
            ",".join(map(str, r["threads"])),
            f"{r['median']:.2f}",
            f"{r['spread']:.0%}",
            f"{args.tasks / r['median']:.0f}",
            f"{flops / r['median'] / 1e9:.1f}",
            f"{anchor / r['median']:.2f}x",
        ]
        for r in rows
    ]
    print(
        f"{args.tasks} tasks x {args.dots} dots of {args.size}x{args.size} on 2 workers x 1 task thread; "
        f"{cpu.usable_cores} usable cores ({cpu.model}); median of {args.repeat} after 1 warm-up"
    )
    print(
        tabulate(
            table,
            headers=[
                "mode",
                "BLAS threads/worker",
                "wall s",
                "spread",
                "tasks/s",
                "GFLOP/s",
                "speed-up vs default",
            ],
            disable_numparse=True,
        )
    )
    print(f"ratio blastune plugin / library default: {anchor / rows[2]['median']:.2f}x faster")


if __name__ == "__main__":
    main()
