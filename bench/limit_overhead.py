#!/usr/bin/env python
"""Cost of entering+exiting a thread limit: blastune.limit vs threadpoolctl, measured in one run.

Anchors, from the same run: threadpoolctl.threadpool_limits(1) (rescans the loaded libraries on
every call) and threadpoolctl's cached ThreadpoolController().limit(limits=1) (no rescan). The floor
is the raw get/set calls on the OpenBLAS copies, what any limiter must at least do.

Method: interleaved rounds (each candidate timed once per round, the order rotating), the median
per-call time within a round, the median over rounds. A round whose process waited for a CPU more
than 5% of its time (schedstat run-queue wait) is counted as disturbed and said so.

    python bench/limit_overhead.py [--rounds 15] [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import statistics
import time

import numpy  # noqa: F401  (loads numpy's OpenBLAS)
import scipy.linalg  # noqa: F401  (and scipy's)
import threadpoolctl
from tabulate import tabulate

import blastune
from blastune.facts.schedstat import Meter


def per_call_us(fn, calls):
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1000


def candidates():
    def tp_limits():
        with threadpoolctl.threadpool_limits(1):
            pass

    ctl = threadpoolctl.ThreadpoolController()

    def tp_cached():
        with ctl.limit(limits=1):
            pass

    raw = []
    for c in ctl.lib_controllers:
        if c.internal_api == "openblas":
            pre, suf = c._symbol_prefix, c._symbol_suffix
            get = getattr(c.dynlib, f"{pre}openblas_get_num_threads{suf}")
            set_ = getattr(c.dynlib, f"{pre}openblas_set_num_threads{suf}")
            set_.argtypes, set_.restype = [ctypes.c_int], None
            raw.append((get, set_))

    def raw_calls():
        for get, set_ in raw:
            before = get()
            set_(1)
            set_(before)

    lim = blastune.limit(1)

    def bl_reused():
        with lim:
            pass

    def bl_new():
        with blastune.limit(1):
            pass

    return [
        ("threadpoolctl.threadpool_limits(1)", tp_limits, 20),  # ~1 ms a call: fewer calls
        ("threadpoolctl ThreadpoolController().limit(limits=1), cached", tp_cached, 1),
        (f"floor: raw get/set on the {len(raw)} OpenBLAS copies", raw_calls, 1),
        ("blastune.limit(1), one object reused", bl_reused, 1),
        ("with blastune.limit(1): (new object each time)", bl_new, 1),
    ]


def in_task(fn, calls):
    """The same call inside a running asyncio task (blastune then keys the limit by the task)."""

    async def main():
        return per_call_us(fn, calls)

    return asyncio.run(main())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()
    cands = candidates()
    bl_new = cands[-1][1]
    names = [c[0] for c in cands] + ["with blastune.limit(1): inside an asyncio task"]
    times = {n: [] for n in names}
    disturbed = 0
    for fn in [c[1] for c in cands]:  # warm-up
        per_call_us(fn, 50)
    for r in range(args.rounds):
        meter = Meter.start()
        order = list(range(len(cands) + 1))
        order = order[r % len(order) :] + order[: r % len(order)]
        for i in order:
            if i == len(cands):
                times[names[i]].append(in_task(bl_new, args.calls))
            else:
                name, fn, div = cands[i]
                times[name].append(per_call_us(fn, max(50, args.calls // div)))
        c = meter.stop()
        disturbed += bool(c and c.contended)
    med = {n: statistics.median(v) for n, v in times.items()}
    anchor, cached = med[names[0]], med[names[1]]
    rows = []
    for n in names:
        v = sorted(times[n])
        rows.append(
            [
                n,
                f"{med[n]:.2f}",
                f"{v[0]:.2f}-{v[-1]:.2f}",
                f"{anchor / med[n]:.0f}x",
                f"{cached / med[n]:.1f}x",
            ]
        )
    print(
        tabulate(
            rows,
            headers=[
                "enter+exit",
                "median us",
                "range over rounds",
                "vs threadpool_limits",
                "vs cached controller",
            ],
            tablefmt="github",
            disable_numparse=True,
        )
    )
    ours = med["with blastune.limit(1): (new object each time)"]
    print(
        f"\n{args.rounds} interleaved rounds x {args.calls} calls; {disturbed} round(s) disturbed "
        f"(the process waited > 5% of the round for a CPU)"
    )
    print(
        f"blastune.limit(1): {ours:.2f} us; threadpool_limits(1): {anchor:.0f} us ({anchor / ours:.0f}x); "
        f"cached ThreadpoolController().limit: {cached:.2f} us ({cached / ours:.1f}x)"
    )


if __name__ == "__main__":
    main()
