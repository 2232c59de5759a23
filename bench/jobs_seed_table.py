"""The seed's threads-versus-processes table, and the oversubscription cost, as ``blastune jobs`` measures them.

Three measurements through the library API (the same code as the CLI), each against its own serial
anchor from the same run, interleaved round by round:

1. ``--workload python`` (the seed's f(): holds the GIL): 2 threads should be no faster than serial
   (<= 1.1x), 2 processes nearly 2x (>= 1.6x).
2. ``--workload numpy`` (the seed's g(): releases the GIL): both >= 1.4x.
3. ``--op dot --size 300``: the naive 2 processes x default BLAS threads against 2 processes x 1 thread
   (expected: several times slower on 2 cores), and ``recommend`` must pick a layout within 10% of
   the fastest measured.

The checks assume 2 usable cores and an otherwise idle machine; the table says when it was not.

    python bench/jobs_seed_table.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys

from blastune.advise.recommend import recommend
from blastune.measure.jobs.entry import Layout, run_jobs


def _pct(v) -> str:
    return "  —" if v is None else f"{v:3.0f}%"


def _row(res, spec):
    return next(r for r in res.results if r.layout.spec == spec)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        os.environ.pop(name, None)  # the naive layout must see the library default
    layouts = [Layout("thread", 2, 1), Layout("process", 2, 1)]
    checks = []
    print(
        f"{'workload':<10} {'tasks':>6} {'serial s':>9} {'2 threads':>10} {'2 processes':>12}   expected"
    )
    for kind, expect in (
        ("python", "threads <= 1.1x, processes >= 1.6x"),
        ("numpy", "threads >= 1.4x, processes >= 1.4x"),
    ):
        res = run_jobs(kind, None, layouts, repeats=args.repeats)
        th, pr = _row(res, "thread:2x1").speedup, _row(res, "process:2x1").speedup
        print(
            f"{kind:<10} {res.tasks:>6} {res.baseline.wall_s:>9.3f} {th:>9.2f}x {pr:>11.2f}x   {expect}"
        )
        checks.append((f"{kind}: threads", th <= 1.1 if kind == "python" else th >= 1.4))
        checks.append((f"{kind}: processes", pr >= (1.6 if kind == "python" else 1.4)))
        for r in res.results:
            print(
                f"  {r.layout.spec:<18} wait {_pct(r.wait_pct)}  {'CONTENDED (disturbed)' if r.contended else ''}"
            )
        for w in res.warnings:
            print(f"  warning: {w}")
    dot = run_jobs(
        op="dot",
        size=300,
        layouts=[Layout("serial", 1, 2), *layouts, Layout("process", 2, None)],
        repeats=args.repeats,
    )
    good, naive = _row(dot, "process:2x1"), _row(dot, "process:2xdefault")
    ratio = good.tasks_per_s / naive.tasks_per_s
    print(
        f"\ndot 300, {dot.tasks} tasks: 2 processes x 1 BLAS thread {good.tasks_per_s:.0f} tasks/s, naive 2 x "
        f"default ({naive.threads_seen}) {naive.tasks_per_s:.0f} tasks/s: naive is {ratio:.1f}x slower "
        "(by hand: 10.6x)"
    )
    checks.append(("dot: naive several times slower", ratio >= 3))
    for r in dot.results:
        why = "self-inflicted" if r.self_oversubscribed else ""
        print(
            f"  {r.layout.spec:<18} wait {_pct(r.wait_pct)} {why:<15} {'CONTENDED (disturbed)' if r.contended else ''}"
        )
    if dot.contended:
        print("  the figures above were disturbed by other programs: re-run on a quiet machine")
    else:
        rec = recommend(dot.to_dict(), save_profile=False)
        print(
            f"recommend: {rec.layout} ({rec.within_best:.0%} of the fastest, {dot.best.layout.label})"
        )
        checks.append(("recommend within 10% of best", rec.within_best >= 0.9))
    for w in dot.warnings:
        print(f"  warning: {w}")
    print()
    for name, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
