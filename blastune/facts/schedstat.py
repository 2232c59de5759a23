"""Contention as the kernel measures it: how long threads waited for a CPU while they could run.

``/proc/PID/task/TID/schedstat`` holds three numbers per thread: nanoseconds on a CPU, nanoseconds
*runnable but waiting for a CPU* (run-queue delay) and the number of timeslices. A thread that
waited was disturbed -- by another program, or by its own siblings when there are more threads than
cores -- however short the measurement. ``/proc/pressure/cpu`` (PSI) says the same machine-wide.

``Meter`` brackets a measurement::

    meter = Meter.start([os.getpid(), *worker_pids])
    ...timed work...
    c = meter.stop()          # Contention(wait_pct=…, …) or None where schedstat is missing

``wait_pct`` is run-queue wait over wall time, summed over every thread of the processes measured,
in percent of the wall time: 40 means that, on average, 0.4 threads stood waiting for a CPU.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from blastune.facts.cpu import read_text

# A measurement whose threads waited for a CPU more than this share of its wall time (summed over
# its threads) is "contended". 5% tolerates the odd wake-up of a kernel thread or timer; a competing
# CPU-bound process on a full machine costs tens of percent.
CONTENDED_WAIT_PCT = 5.0

PROC = Path("/proc")


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative schedstat counters: ns on a CPU, ns runnable-but-waiting, timeslices."""

    run_ns: int = 0
    wait_ns: int = 0
    slices: int = 0

    def __add__(self, other: "CpuTimes") -> "CpuTimes":
        return CpuTimes(
            self.run_ns + other.run_ns, self.wait_ns + other.wait_ns, self.slices + other.slices
        )

    def __sub__(self, other: "CpuTimes") -> "CpuTimes":
        return CpuTimes(
            self.run_ns - other.run_ns, self.wait_ns - other.wait_ns, self.slices - other.slices
        )


def parse_schedstat(text: str) -> CpuTimes | None:
    parts = text.split()
    if len(parts) < 3 or not all(p.isascii() and p.isdigit() for p in parts[:3]):
        return None
    return CpuTimes(int(parts[0]), int(parts[1]), int(parts[2]))


def available() -> bool:
    """Does this kernel keep per-thread schedstat (Linux with CONFIG_SCHED_INFO)?"""
    text = read_text(PROC / "self" / "schedstat")
    return text is not None and parse_schedstat(text) is not None


def thread_times(pid: int) -> dict[int, CpuTimes]:
    """Every thread of ``pid`` -> its counters. Empty when the process is gone or unreadable."""
    out = {}
    try:
        tids = os.listdir(PROC / str(pid) / "task")
    except OSError:
        return out
    for tid in tids:
        text = read_text(PROC / str(pid) / "task" / tid / "schedstat")
        times = parse_schedstat(text) if text else None
        if times is not None:
            out[int(tid)] = times
    return out


def process_times(pid: int) -> CpuTimes | None:
    """The sum over the live threads of ``pid``; None when it cannot be read."""
    threads = thread_times(pid)
    return sum(threads.values(), CpuTimes()) if threads else None


@dataclass(frozen=True)
class Contention:
    """What the threads measured did during ``wall_s``: on-CPU and waiting time, summed."""

    wall_s: float
    run_s: float
    wait_s: float
    wait_pct: float  # wait_s / wall_s * 100
    contended: bool  # wait_pct > CONTENDED_WAIT_PCT


class Meter:
    """Snapshot the threads of some processes; ``stop()`` gives their wait over the interval.

    Threads that appear during the interval count from zero (a new BLAS worker thread); threads that
    end during it are lost from the end snapshot, so their wait is not counted -- schedstat keeps no
    record of dead threads. BLAS pools live for the whole process, so this rarely matters.
    """

    def __init__(self, pids):
        self.pids = list(pids)
        self.before = self._snapshot()
        self.t0 = time.monotonic()

    @classmethod
    def start(cls, pids=None) -> "Meter":
        return cls([os.getpid()] if pids is None else pids)

    def _snapshot(self) -> dict[tuple[int, int], CpuTimes]:
        return {(pid, tid): t for pid in self.pids for tid, t in thread_times(pid).items()}

    def stop(self) -> Contention | None:
        wall = time.monotonic() - self.t0
        after = self._snapshot()
        if not after and not self.before:
            return None
        delta = sum((t - self.before.get(k, CpuTimes()) for k, t in after.items()), CpuTimes())
        wall = max(wall, 1e-9)
        pct = 100.0 * delta.wait_ns / 1e9 / wall
        return Contention(
            wall_s=wall,
            run_s=delta.run_ns / 1e9,
            wait_s=delta.wait_ns / 1e9,
            wait_pct=pct,
            contended=pct > CONTENDED_WAIT_PCT,
        )


@dataclass(frozen=True)
class Pressure:
    """``/proc/pressure/cpu``: share of wall time some runnable task waited for a CPU (PSI)."""

    some_avg10: float
    some_avg60: float
    some_avg300: float
    some_total_us: int


def parse_pressure(text: str) -> Pressure | None:
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind != "some":
            continue
        fields = dict(f.split("=", 1) for f in rest.split() if "=" in f)
        try:
            return Pressure(
                float(fields["avg10"]),
                float(fields["avg60"]),
                float(fields["avg300"]),
                int(fields["total"]),
            )
        except (KeyError, ValueError):
            return None
    return None


def cpu_pressure(root: Path = PROC) -> Pressure | None:
    """Machine-wide CPU pressure, or None where PSI is off (kernel < 4.20, or psi=0)."""
    text = read_text(Path(root) / "pressure" / "cpu")
    return parse_pressure(text) if text else None
