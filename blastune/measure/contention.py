"""Was a measurement disturbed? The run-queue wait of the threads doing the work, per timed sample.

The kernel keeps, for every thread, the time it was runnable but waiting for a CPU
(``/proc/PID/task/TID/schedstat``, read through ``blastune.facts.schedstat``). ``WorkWait`` reads it
for the threads of *this* process that do the work -- the calling thread and the BLAS/OpenMP pool
threads, not the other Python threads (a progress bar's refresh thread waits for its own reasons) --
just before and just after each timed sample. A sample whose threads waited more than
``CONTENDED_WAIT_PCT`` percent of its wall time (summed over the threads) was disturbed, however
short it was: a 30 ms point sharing its core with a CPU-bound competitor waits ~100%, a quiet one
~0%.

An ``--isolate`` worker process measures itself the same way, so "the threads doing the work" is
always the process that calls the op.

Where schedstat is missing (not Linux, or a kernel without CONFIG_SCHED_INFO) the sweep falls back
to ``blastune.measure.load.LoadProbe`` -- CPU time other processes used machine-wide -- and says so
in the document (``contention_source``).

``judge`` is THE rule for "disturbed from outside", used by ``jobs`` batches and ``sweep`` points
alike (docs/jobs.md, "Contention"). Lost CPU alone is not enough: a measurement also loses CPU to
itself (blastune's own harness, wake-up latency, its own oversubscription). It was disturbed from
outside only when other programs -- hypervisor steal time included -- used enough CPU meanwhile to
explain the loss: at most the CPU others really used counts as outside disturbance, judged as a
share of the CPU the measurement wanted, never in CPUs (0.05 CPUs is a disturbance on 2 cores and
noise on 128).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from blastune.facts import schedstat
from blastune.facts.schedstat import CONTENDED_WAIT_PCT

SOURCE_SCHEDSTAT = "schedstat"
SOURCE_LOAD_PROBE = "load probe"

__all__ = [
    "CONTENDED_WAIT_PCT",
    "CONTENDED_SHARE_PCT",
    "BUSY_SHARE_PCT",
    "RULE",
    "SOURCE_SCHEDSTAT",
    "SOURCE_LOAD_PROBE",
    "Verdict",
    "WorkWait",
    "judge",
    "source",
]

# A measurement is contended when others took more than this share of the CPU it wanted. The same
# 5% that schedstat's wait rule tolerates for one CPU (the odd kernel thread or timer), now of the
# CPUs the measurement wanted: on 16 cores the 0.7 CPUs blastune's own pool once lost is 4.4% of
# the layout, while a CPU-bound competitor sharing the cores costs tens of percent on any machine.
CONTENDED_SHARE_PCT = CONTENDED_WAIT_PCT
# Without per-thread figures the loss is unknown: the machine-wide load alone decides. Others using
# more than this share of the usable CPUs may have taken some from us; below it, on any core count,
# they are background (kernel threads, a shell, a monitor: ~0.02 CPUs each).
BUSY_SHARE_PCT = 5.0
# The name of the rule above, saved in the documents so a reader knows which judgement they hold.
RULE = "outside-share"


@dataclass(frozen=True)
class Verdict:
    """What ``judge`` decided, and the figures it decided on (CPUs, averaged over the wall)."""

    contended: bool | None  # None: nothing measured to judge by
    wanted: float  # CPUs the measurement wanted (its threads, at most the usable cores)
    lost: float | None  # CPUs its threads wanted and did not get (steal included)
    outside: float | None  # of those, what other programs' CPU can explain: min(lost, others)
    outside_pct: float | None  # outside as a share of ``wanted``, in percent


def judge(
    lost_cpus: float | None,
    others_cpus: float | None,
    wanted_cpus: float,
    *,
    steal_cpus: float | None = None,
    usable: int | None = None,
    threshold_pct: float = CONTENDED_SHARE_PCT,
) -> Verdict:
    """Was a measurement disturbed from outside? (see the module docstring)

    ``lost_cpus``: CPU its threads wanted and did not get (run-queue wait beyond what its own
    number of threads explains), None where schedstat is missing. ``others_cpus``: CPU every other
    program used meanwhile (/proc/stat busy minus ours; steal included), None where unknown -- then
    the loss decides alone. ``steal_cpus``: the hypervisor's steal time meanwhile: a stolen CPU
    shows as neither run nor wait in the thread's own clock, so it is added to the loss (at most
    ``wanted_cpus``: steal on CPUs we did not want is not ours). ``usable``: the usable cores, for
    the judgement without schedstat.
    """
    wanted = max(float(wanted_cpus), 1e-9)
    if lost_cpus is None:
        if others_cpus is None:
            return Verdict(None, wanted, None, None, None)
        # no per-thread figures: others beyond a background share of the machine may have hurt us
        room = float(usable) if usable else wanted
        busy = 100.0 * others_cpus / room > BUSY_SHARE_PCT
        return Verdict(busy, wanted, None, None, None)
    lost = max(0.0, lost_cpus) + min(max(0.0, steal_cpus or 0.0), wanted)
    outside = lost if others_cpus is None else min(lost, max(0.0, others_cpus))
    pct = 100.0 * outside / wanted
    return Verdict(pct > threshold_pct, wanted, lost, outside, pct)


def source() -> str:
    """How this process can tell contention: ``"schedstat"`` or ``"load probe"``."""
    return SOURCE_SCHEDSTAT if schedstat.available() else SOURCE_LOAD_PROBE


class WorkWait:
    """A ``watch`` for ``blastune.measure.timing.measure``: wait seconds of the working threads."""

    def __init__(self, pid: int | None = None):
        self.pid = os.getpid() if pid is None else pid

    def _others(self) -> set[int]:
        # Python threads other than the caller do no BLAS work (a progress bar, a dask heartbeat)
        me = threading.get_ident()
        return {
            t.native_id for t in threading.enumerate() if t.ident != me and t.native_id is not None
        }

    def begin(self):
        skip = self._others() if self.pid == os.getpid() else set()
        return skip, {
            tid: t for tid, t in schedstat.thread_times(self.pid).items() if tid not in skip
        }

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
