"""Does `blastune sweep` report what a bare timing loop sees? dot 2000 x 2000 at 1 thread.

The anchor is the plainest measurement there is -- ``t0 = perf_counter(); numpy.dot(a, b); perf_counter() - t0``
in a loop, median of the calls -- taken in the same process, on the same inputs (the sweep's fixed seed),
at the same thread count. Rounds alternate anchor and sweep so drift from other load on the machine hits
both alike. The goal: the sweep's median within 1% of the anchor's. Each round also shows the run-queue
wait the sweep measured around its samples (``wait``): a round whose threads waited was disturbed by
other load, and is marked so rather than trusted.

``--budgets 15,60`` also times whole ``blastune sweep --op all --size 500,1000 --threads 1,2 -b B`` runs
(the console script, start-up included) against the promise: within the budget plus one point.

    python bench/sweep_fidelity.py [--size 2000] [--rounds 7] [--calls 10] [--budgets 15,60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def bare_loop(a, b, calls: int) -> float:
    import numpy as np

    np.dot(a, b)  # warm-up, as any careful hand measurement would do
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        np.dot(a, b)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=10, help="calls per anchor round")
    ap.add_argument(
        "--budgets", default="", help="comma-separated --budget values to time whole sweeps at"
    )
    args = ap.parse_args(argv)

    import blastune
    from blastune.measure.ops import OPS
    from blastune.measure.sweep.entry import sweep
    from tabulate import tabulate

    prepared = OPS["dot"].prepare(args.size, "float64", "numpy")  # the very inputs the sweep builds
    a, b = prepared.args
    rows, anchors, sweeps = [], [], []
    with blastune.limit(1):
        for r in range(1, args.rounds + 1):
            t_bare = bare_loop(a, b, args.calls)
            res = sweep("dot", [args.size], threads=[1], budget=10, min_repeats=5)
            p = res.points[0]
            anchors.append(t_bare)
            sweeps.append(p["median_s"])
            rows.append(
                [
                    r,
                    f"{t_bare * 1e3:.2f}",
                    f"{p['median_s'] * 1e3:.2f}",
                    p["repeats"],
                    f"{p['spread']:.2%}" if p["spread"] is not None else "-",
                    "-"
                    if p.get("wait_pct") is None
                    else f"{p['wait_pct']:.1f}%" + (" disturbed" if p["contended"] else ""),
                    f"{p['median_s'] / t_bare:.4f}",
                ]
            )
    anchor, measured = statistics.median(anchors), statistics.median(sweeps)
    ratio = measured / anchor
    print(
        f"dot {args.size}x{args.size} float64, 1 thread, {args.rounds} alternating rounds "
        f"(anchor: {args.calls} bare perf_counter calls per round)"
    )
    print(
        tabulate(
            rows,
            headers=[
                "round",
                "bare loop ms",
                "sweep ms",
                "sweep repeats",
                "sweep spread",
                "wait",
                "sweep / bare",
            ],
            disable_numparse=True,
        )
    )
    gflops = 2 * args.size**3 / measured / 1e9
    print(
        f"\nmedian of rounds: bare {anchor * 1e3:.2f} ms, sweep {measured * 1e3:.2f} ms ({gflops:.1f} GFLOP/s)"
    )
    verdict = "within" if abs(ratio - 1) <= 0.01 else "OUTSIDE"
    print(f"ratio sweep / bare = {ratio:.4f} ({verdict} the 1% goal)")
    if args.budgets:
        budget_table([float(b) for b in args.budgets.split(",")])
    return 0


def budget_table(budgets) -> None:
    """Whole sweeps through the console script: wall time against the budget plus the longest point."""
    import json
    import shutil
    import subprocess

    from tabulate import tabulate

    exe = shutil.which("blastune") or sys.executable
    base = [exe] if exe.endswith("blastune") else [exe, "-m", "blastune"]
    rows = []
    for b in budgets:
        t0 = time.perf_counter()
        r = subprocess.run(
            [
                *base,
                "sweep",
                "--op",
                "all",
                "--size",
                "500,1000",
                "--threads",
                "1,2",
                "-b",
                str(b),
                "--json",
            ],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        doc = json.loads(r.stdout)
        pts = doc["points"]
        longest = max(p["elapsed_s"] for p in pts)
        measuring = sum(p["elapsed_s"] for p in pts)
        rows.append(
            [
                f"{b:g}",
                f"{wall:.1f}",
                f"{measuring:.1f}",
                f"{longest:.1f}",
                len(pts),
                len(doc.get("not_measured", [])),
                doc["status"],
                "yes" if measuring <= b + longest else "NO",
                sum(1 for p in pts if p.get("contended")),
            ]
        )
    print(
        "\nwhole sweeps: --op all --size 500,1000 --threads 1,2 (12 ops x 2 sizes x 2 thread counts = 48 points; the budget counts from the first point)"
    )
    print(
        tabulate(
            rows,
            headers=[
                "-b",
                "wall s",
                "measuring s",
                "longest point s",
                "points",
                "not measured",
                "status",
                "within b + 1 point",
                "contended",
            ],
            disable_numparse=True,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
