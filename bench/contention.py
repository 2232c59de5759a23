#!/usr/bin/env python
"""Two concurrent 300x300 dot loops: library-default threads vs ``blastune.limit(jobs=2)``.

What it shows is contention as the kernel measures it -- the share of the time each loop's threads
could run but waited for a CPU (run-queue wait / (on-CPU + wait)) -- read two ways in the same run:

  * ``blastune run --report --json`` around each loop (the whole process tree, from start to end);
  * ``blastune ps --json --interval 1`` taken while both loops run (the same share over 1 s).

With the default, each OpenBLAS starts one thread per core, so two loops put 2 x cores threads on
the cores (oversubscribed: expect a large wait share); with ``limit(jobs=2)`` each runs
cores // 2 threads (expect a small one -- whatever other programs on the machine add). Layouts
alternate over ``--rounds`` rounds; the table gives medians. The machine's own load is measured
first (one quiet 1-thread loop alone) and printed, so a busy machine is visible as such.

    python bench/contention.py [--seconds 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from tabulate import tabulate

LOOP = r"""
import sys, time, numpy as np
seconds, limited = float(sys.argv[1]), sys.argv[2] == "1"
a = np.random.default_rng(0).standard_normal((300, 300))
def work():
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ a
        n += 1
    return n / (time.perf_counter() - t0)
if limited:
    import blastune
    with blastune.limit(jobs=2):
        rate = work()
else:
    rate = work()
print(rate, flush=True)
"""


def blastune_cmd():
    exe = shutil.which("blastune")
    return [exe] if exe else [sys.executable, "-m", "blastune"]


def start_loop(seconds: float, limited: bool, threads: int):
    # run -t sets the thread variables; the default layout gets the library default (one per core)
    cmd = blastune_cmd() + [
        "run",
        "-t",
        str(threads),
        "--report",
        "--json",
        "--",
        sys.executable,
        "-c",
        LOOP,
        str(seconds),
        "1" if limited else "0",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc):
    out, err = proc.communicate(timeout=600)
    summary = json.loads(err.strip().splitlines()[-1])
    return float(out.strip()), summary["report"]


def ps_shares(pids, interval=1.0):
    r = subprocess.run(
        blastune_cmd() + ["ps", "--json", "--interval", str(interval)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    data = json.loads(r.stdout)
    return {p["pid"]: p.get("wait_share_pct") for p in data["processes"] if p["pid"] in pids}


def loop_pids(run_pid, deadline):
    """The dot loop is blastune run's child: find it through /proc."""
    while time.time() < deadline:
        try:
            with open(f"/proc/{run_pid}/task/{run_pid}/children") as f:
                kids = [int(k) for k in f.read().split()]
            if kids:
                return kids[0]
        except OSError:
            pass
        time.sleep(0.05)
    return None


def one(seconds, limited, cores):
    procs = [start_loop(seconds, limited, cores) for _ in range(2)]
    pids = [loop_pids(p.pid, time.time() + 30) for p in procs]
    time.sleep(
        1.0
    )  # let both start their BLAS pools (numpy import included); ps itself takes ~1 s to start
    ps = ps_shares(set(pids))
    results = [finish(p) for p in procs]
    return [
        {"rate": rate, "report": rep, "ps_share": ps.get(pid)}
        for (rate, rep), pid in zip(results, pids)
    ]


def ambient(seconds):
    """One loop alone, 1 thread: its wait share is what the rest of the machine costs now."""
    cmd = blastune_cmd() + [
        "run",
        "-t",
        "1",
        "--report",
        "--json",
        "--",
        sys.executable,
        "-c",
        LOOP,
        str(seconds),
        "0",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return json.loads(r.stderr.strip().splitlines()[-1])["report"]["wait_share_pct"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    from blastune.facts.cpu import usable_cores

    cores = usable_cores()[0]
    quiet = ambient(min(args.seconds, 2.0))
    runs = {False: [], True: []}
    for _ in range(args.rounds):
        for limited in (False, True):
            runs[limited] += one(args.seconds, limited, cores)
    rows = []
    for limited in (False, True):
        jobs = runs[limited]
        rep = [j["report"] for j in jobs]
        ps = [j["ps_share"] for j in jobs if j["ps_share"] is not None]
        rows.append(
            [
                f"limit(jobs=2): {max(1, cores // 2)} thread(s) each"
                if limited
                else f"default: {cores} thread(s) each",
                f"{statistics.median(r['wait_share_pct'] for r in rep):.0f}%",
                f"{statistics.median(ps):.0f}%" if ps else "-",
                f"{statistics.median(r['blas_threads_max'] or 0 for r in rep):.0f}",
                f"{statistics.median(r['coverage_pct'] or 0 for r in rep):.0f}%",
                f"{sum(j['rate'] for j in jobs) / args.rounds:.0f}",
            ]
        )
    print(
        tabulate(
            rows,
            headers=[
                "2 concurrent 300x300 dot loops",
                "wait share (run --report)",
                "wait share (ps)",
                "OS threads seen (max)",
                "coverage",
                "dots/s, both",
            ],
            tablefmt="github",
            disable_numparse=True,
        )
    )
    print(
        f"\n{cores} usable cores; {args.rounds} round(s) x 2 loops of {args.seconds:g} s per layout, "
        f"alternating; medians over the {2 * args.rounds} loops."
    )
    print(
        f"ambient: one 1-thread loop alone waited {quiet:.0f}% of its runnable time "
        f"({'a quiet machine' if quiet < 5 else 'other programs are using the CPUs: figures are disturbed'})."
    )
    if os.environ.get("BLASTUNE_BENCH_JSON"):
        print(json.dumps(runs))


if __name__ == "__main__":
    main()
