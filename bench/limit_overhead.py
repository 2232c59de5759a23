#!/usr/bin/env python
"""Cost of entering+exiting a thread limit, blastune vs threadpoolctl, measured in one run.

Anchor: threadpoolctl.threadpool_limits(1), which rescans the loaded libraries on every call.
Goal (issue 3): blastune.limit enter+exit <= 10 us median and >= 50x cheaper than the anchor.

    python bench/limit_overhead.py [--repeats 20000]
"""
from __future__ import annotations

import argparse
import ctypes
import statistics
import time

import numpy  # noqa: F401  (loads numpy's OpenBLAS)
import scipy.linalg  # noqa: F401  (and scipy's)
import threadpoolctl
from tabulate import tabulate

import blastune


def measure(fn, repeats):
    for _ in range(min(200, repeats)):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    q1, q3 = samples[len(samples) // 4], samples[3 * len(samples) // 4]
    return statistics.median(samples) / 1000, (q3 - q1) / 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20000)
    args = ap.parse_args()
    n = args.repeats

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

    def raw_calls():  # what any limiter must at least do: read, set, set back
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

    rows = []
    results = {}
    for name, fn, reps in [("threadpoolctl.threadpool_limits(1)", tp_limits, max(500, n // 20)),
                           ("ThreadpoolController().limit(limits=1), cached", tp_cached, n),
                           (f"raw get/set on the {len(raw)} OpenBLAS copies", raw_calls, n),
                           ("blastune.limit(1), one object reused", bl_reused, n),
                           ("with blastune.limit(1): (new object each time)", bl_new, n)]:
        med, iqr = measure(fn, reps)
        results[name] = med
        rows.append([name, f"{med:.2f}", f"{iqr:.2f}", reps])
    anchor = results["threadpoolctl.threadpool_limits(1)"]
    for r in rows:
        r.append(f"{anchor / float(r[1]):.0f}x")
    print(tabulate(rows, headers=["enter+exit", "median us", "IQR us", "repeats", "cheaper than anchor"],
                   tablefmt="github", disable_numparse=True))
    ours = results["with blastune.limit(1): (new object each time)"]
    print(f"\nanchor threadpool_limits(1): {anchor:.1f} us; blastune.limit(1): {ours:.2f} us "
          f"-> ratio {anchor / ours:.0f}x (goal >= 50x, <= 10 us)")


if __name__ == "__main__":
    main()
