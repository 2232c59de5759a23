"""Tests that need a quiet machine judge only on one, and say so when it is not.

The machine the tests run on may be shared (other engineers' test runs, a CI neighbour). A test
whose outcome other programs can change runs its measured part through ``quietly``: what others
would take from a CPU-bound process of ours is measured before *and* after that part (a load that
comes and goes between a check and the measurement was once missed: issue 18), and the run may say
itself that it was disturbed. A disturbed try runs once more; disturbed again, the test is skipped
with the figures of both tries -- never judged on a busy machine, never passed without judging.

"What others take from us" is the run-queue wait of a busy loop of ours on each usable CPU
(schedstat): a niced background job, which yields to us, costs it nearly nothing, while a program
at our priority costs it up to half the CPU. Without schedstat, other programs' CPU time from
/proc/stat (``blastune.measure.load``) stands in for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from blastune.facts.schedstat import available as schedstat_available
from blastune.measure.load import LoadProbe
from tests.conftest import child_env

# A try is disturbed when others took more than this share of one of our CPUs. The effects the
# quiet tests judge are waits of 20% and more (two pools on too few cores), or a point called
# faster or slower; a tenth of a CPU, on any core count, leaves them standing.
QUIET_SHARE = 0.10
PROBE_S = 0.5  # long enough for the scheduler to share a CPU out many times (its slices are ms)

# One process forks a busy loop per CPU (one interpreter start, however many CPUs); each loop
# reports its run-queue wait over its wall time.
_SPIN = """
import os, sys, time
from blastune.facts import schedstat
cpus, seconds = [int(c) for c in sys.argv[1].split(",")], float(sys.argv[2])
r, w = os.pipe()
kids = []
for cpu in cpus:
    pid = os.fork()
    if pid == 0:
        os.sched_setaffinity(0, {cpu})
        b, t0 = schedstat.process_times(os.getpid()), time.monotonic()
        while time.monotonic() - t0 < seconds:
            pass
        a = schedstat.process_times(os.getpid())
        share = (a.wait_ns - b.wait_ns) / 1e9 / (time.monotonic() - t0)
        os.write(w, f"{cpu} {share}\\n".encode())
        os._exit(0)
    kids.append(pid)
os.close(w)
for pid in kids:
    os.waitpid(pid, 0)
with os.fdopen(r) as f:
    print(f.read(), end="")
"""


def waits(cpus=None, seconds: float = PROBE_S) -> dict[int, float]:
    """The run-queue wait of a busy loop of ours on each of ``cpus`` (default: every usable one),
    as a share of its wall time: what other programs take from a CPU-bound process there."""
    cpus = sorted(os.sched_getaffinity(0)) if cpus is None else list(cpus)
    out = subprocess.run(
        [sys.executable, "-c", _SPIN, ",".join(map(str, cpus)), str(seconds)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return {int(c): float(v) for c, v in (line.split() for line in out.stdout.splitlines())}


def ambient(seconds: float = PROBE_S) -> dict[str, float]:
    """What other programs take from us now, as a share of a CPU: ``{"cpu N": share}`` for the CPU
    they took most from (schedstat), or ``{"others": share}`` of the usable CPUs (/proc/stat)."""
    if not schedstat_available():
        probe = LoadProbe()
        time.sleep(seconds)
        other = probe.other_cores() or 0.0
        return {"others": other / len(os.sched_getaffinity(0))}
    by_cpu = waits(seconds=seconds)
    worst = max(by_cpu, key=by_cpu.get)
    return {f"cpu {worst}": by_cpu[worst]}


def _text(figures: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0%}" for k, v in figures.items())


def quietly(measure, disturbed=lambda result: None, tries: int = 2):
    """``measure()`` on a quiet machine -> its result.

    ``disturbed(result)``: what the run itself saw of other programs, with its figures, or None.
    Before and after each try ``ambient()`` is measured; a try with others above QUIET_SHARE of a CPU
    at either end, or disturbed by its own account, runs again (``tries`` in all); then the test is
    skipped with every try's figures."""
    tried = []
    for _ in range(tries):
        before = ambient()
        result = measure()
        after = ambient()
        during = disturbed(result)
        if (
            max(before.values()) <= QUIET_SHARE
            and max(after.values()) <= QUIET_SHARE
            and not during
        ):
            return result
        tried.append(
            f"before: {_text(before)}; after: {_text(after)}"
            + (f"; during: {during}" if during else "")
        )
    pytest.skip(
        f"not a quiet machine in {tries} tries (quiet: others take at most {QUIET_SHARE:.0%} of a "
        "CPU from us): " + " | ".join(tried)
    )


class Others:
    """``with Others(pids) as o: ...; o.share``: the share of our CPUs other programs used while the
    block ran, from /proc/stat; this process and ``pids`` (its children) are not others.

    Programs at a lower priority than ours (/proc/stat's "nice" column, while we run unniced) yield
    to us: a niced background job fills only the CPU time we leave idle, so it is not counted."""

    def __init__(self, pids=()):
        self.pids, self.cpus = list(pids), os.sched_getaffinity(0)
        self.nice_yields = os.nice(0) <= 0

    def __enter__(self):
        self.t0, self.busy0, self.own0 = time.monotonic(), self._busy(), self._own()
        return self

    def __exit__(self, *exc):
        wall = time.monotonic() - self.t0
        others = self._busy() - self.busy0 - (self._own() - self.own0)
        self.share = max(0.0, others / os.sysconf("SC_CLK_TCK") / wall / len(self.cpus))

    def _busy(self) -> int:
        """Busy clock ticks so far of our CPUs (everything but idle, iowait and, see above, nice)."""
        total = 0
        for line in open("/proc/stat"):
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in self.cpus:
                vals = [int(v) for v in fields[:8]]
                total += sum(vals) - vals[3] - vals[4] - (vals[1] if self.nice_yields else 0)
        return total

    def _own(self) -> int:
        """CPU ticks so far of this process and of ``pids``."""
        t = os.times()
        mine = round((t.user + t.system) * os.sysconf("SC_CLK_TCK"))
        return mine + sum(cpu_ticks(pid) for pid in self.pids)


def cpu_ticks(pid: int) -> int:
    fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
