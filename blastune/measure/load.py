"""How much CPU *other* processes took while we measured: the machine-wide busy time (/proc/stat)
minus this process's own CPU time (all its threads), over the wall time.

A multi-threaded BLAS call is hurt far more by a competing process than a single-threaded one (one
of its threads gets descheduled and the others wait for it at the next barrier), so a sweep point
taken while another process ran is pessimistic -- most of all at the highest thread counts. The
sweep records this figure per point and flags the points where it was high, instead of presenting
them as the truth.
"""

from __future__ import annotations

import os
import time

_HZ = os.sysconf("SC_CLK_TCK")
# /proc/stat's unit: a difference of two readings is off by up to one of these
TICK_S = 1.0 / _HZ

# /proc/stat counts in 10 ms ticks per CPU: over less than half a second the figure is tick noise
# (2 ms of batches read "2.80 of 2 CPUs"), not a measurement
LOAD_PROBE_MIN_S = 0.5


def machine_seconds(text: str | None = None) -> tuple[float, float] | None:
    """(busy, steal): CPU-seconds all cores spent not idle since boot, and of those the
    hypervisor's steal time (our virtual CPUs wanted to run and the host ran someone else).
    None where unreadable."""
    if text is None:
        try:
            with open("/proc/stat") as f:
                text = f.readline()
        except OSError:
            return None
    fields = text.split()
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(x) for x in fields[1:9]] + [0] * 8
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
    # steal: time the hypervisor gave our virtual CPUs to someone else -- interference too
    return (user + nice + system + irq + softirq + steal) / _HZ, steal / _HZ


class LoadProbe:
    """``p = LoadProbe(); ...; p.other_cores()`` -> cores' worth of CPU others used meanwhile
    (this process's own CPU time, every thread of it -- BLAS threads too -- is not others')."""

    def __init__(self):
        self.wall0 = time.monotonic()
        self.start0 = machine_seconds()
        self.own0 = time.process_time()
        self.steal: float | None = None  # the steal CPUs of the last other_cores() interval

    def other_cores(self) -> float | None:
        """CPUs others used since the probe started (hypervisor steal included; see ``steal``)."""
        wall = time.monotonic() - self.wall0
        now = machine_seconds()
        if now is None or self.start0 is None or wall <= 0:
            return None
        # one tick either way is the counter's resolution, not steal (0.2 CPUs over a 50 ms point)
        self.steal = max(0.0, (now[1] - self.start0[1] - TICK_S) / wall)
        other = (now[0] - self.start0[0]) - (time.process_time() - self.own0)
        return max(0.0, other / wall)
