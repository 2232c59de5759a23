"""Was a measurement disturbed? The run-queue wait of the threads doing the work, per timed sample.

The kernel keeps, for every thread, the time it was runnable but waiting for a CPU
(``/proc/PID/task/TID/schedstat``, read through ``blastune.facts.schedstat``). ``WorkWait`` reads it
for the threads of *this* process that do the work -- the calling thread and the BLAS/OpenMP pool
threads, not the other Python threads (a progress bar's refresh thread waits for its own reasons) --
just before and just after each timed sample. A sample whose threads waited more than
``CONTENDED_WAIT_PCT`` percent of its wall time (summed over the threads) was disturbed, however short
it was: a 30 ms point sharing its core with a CPU-bound competitor waits ~100%, a quiet one ~0%.

An ``--isolate`` worker process measures itself the same way, so "the threads doing the work" is
always the process that calls the op.

Where schedstat is missing (not Linux, or a kernel without CONFIG_SCHED_INFO) the sweep falls back to
``blastune.measure.load.LoadProbe`` -- CPU time other processes used machine-wide -- and says so in the
document (``contention_source``).
"""
from __future__ import annotations

import os
import threading

from blastune.facts import schedstat
from blastune.facts.schedstat import CONTENDED_WAIT_PCT

SOURCE_SCHEDSTAT = "schedstat"
SOURCE_LOAD_PROBE = "load probe"

__all__ = ["CONTENDED_WAIT_PCT", "SOURCE_SCHEDSTAT", "SOURCE_LOAD_PROBE", "WorkWait", "source",
           "is_contended"]


def source() -> str:
    """How this process can tell contention: ``"schedstat"`` or ``"load probe"``."""
    return SOURCE_SCHEDSTAT if schedstat.available() else SOURCE_LOAD_PROBE


def is_contended(wait_pct: float | None, threshold_pct: float = CONTENDED_WAIT_PCT) -> bool | None:
    return None if wait_pct is None else wait_pct > threshold_pct


class WorkWait:
    """A ``watch`` for ``blastune.measure.timing.measure``: wait seconds of the working threads."""

    def __init__(self, pid: int | None = None):
        self.pid = os.getpid() if pid is None else pid

    def _others(self) -> set[int]:
        # Python threads other than the caller do no BLAS work (a progress bar, a dask heartbeat)
        me = threading.get_ident()
        return {t.native_id for t in threading.enumerate() if t.ident != me and t.native_id is not None}

    def begin(self):
        skip = self._others() if self.pid == os.getpid() else set()
        return skip, {tid: t for tid, t in schedstat.thread_times(self.pid).items() if tid not in skip}

    def end(self, token) -> float | None:
        skip, before = token
        after = schedstat.thread_times(self.pid)
        if not after or not before:
            return None
        wait_ns = 0
        for tid, t in after.items():
            if tid in skip:
                continue
            # a pool thread born during the sample counts from zero
            wait_ns += t.wait_ns - (before[tid].wait_ns if tid in before else 0)
        return max(0, wait_ns) / 1e9
