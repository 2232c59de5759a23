"""Measure points in fresh worker processes, one per thread count, for libraries that read their
thread count only at start-up: the thread variables are set in the worker's environment before it
imports numpy (as pyperf runs its workers). The worker is
``blastune.measure.sweep.worker_process``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from blastune.documents.sweep import SweepPoint
from blastune.errors import BlastuneError
from blastune.measure.children import reap
from blastune.measure.signals import STOP_SIGNALS, SweepInterrupted
from blastune.measure.sweep.points import point_context, point_spec
from blastune.measure.sweep.worker_process import PARENT_VAR

# a worker that ended like this was stopped by a signal meant for the whole group (Ctrl-C in a
# terminal reaches every process of the foreground job): the sweep was interrupted, the worker did
# not fail (its status: 128 + N by the shell's rule, or -N as Popen reports a signal)
_SIGNAL_EXITS = {code: s for s in STOP_SIGNALS for code in (128 + s, -s)}


def run_in_workers(session, points) -> None:
    by_threads: dict[int, list] = {}
    for o, n, d, t in points:
        by_threads.setdefault(t, []).append([o, n, d])
    for t, specs in by_threads.items():
        if not session.may_start():
            for o, n, d in specs:
                session.not_measured(point_spec(o, n, d, t))
            continue
        run_worker(session, t, specs)


def _job(session, threads: int, specs: list) -> dict:
    return {
        **point_context(session.doc),
        "threads": threads,
        "specs": specs,
        "budget": session.share_s(len(specs)),
        "deadline": session.budget.deadline,
        "measured_before": session.measured,
    }


def _env(threads: int) -> dict:
    from blastune.facts.environment import thread_env

    env = dict(os.environ)
    env.update(thread_env(threads))
    # the worker must import this very blastune, even when it was put on sys.path by hand
    pkg_root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
    env[PARENT_VAR] = str(os.getpid())
    return env


def run_worker(session, threads: int, specs: list) -> None:
    """One fresh process for one thread count; its points are saved as they arrive."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "blastune.measure.sweep.worker_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=_env(threads),
            text=True,
        )
        try:
            try:
                proc.stdin.write(json.dumps(_job(session, threads, specs)))
                proc.stdin.close()
            except BrokenPipeError:
                pass  # it died at start-up: its exit status and stderr say why, below
            for line in proc.stdout:
                if not line.startswith("{"):
                    continue  # not ours: a library that printed to file descriptor 1 itself
                msg = json.loads(line)
                if "start" in msg:
                    session.on_point("start", msg["start"])
                elif "point" in msg:
                    session.add(SweepPoint.from_dict(msg["point"], "worker point"))
                elif "skip" in msg:
                    session.not_measured(msg["skip"])
                elif "error" in msg:
                    reap(proc)
                    raise BlastuneError(msg["error"])
            rc = proc.wait()
        finally:
            reap(proc)  # every exit path: an error, an interrupt, a signal
        if rc in _SIGNAL_EXITS:
            raise SweepInterrupted(_SIGNAL_EXITS[rc])
        if rc != 0:
            err.seek(0)
            tail = err.read().strip().splitlines()[-1:] or ["no message"]
            raise BlastuneError(f"the worker for {threads} thread(s) failed (exit {rc}): {tail[0]}")
