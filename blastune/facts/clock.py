"""Is the nominal peak the real one? A quick one-thread dgemm against
``CpuInfo.peak_gflops_per_core``.

The peak ``info`` shows is nominal: FLOPs per cycle times the highest clock the system states --
cpufreq's ``cpuinfo_max_freq`` where it is exposed, else a base clock or whatever /proc/cpuinfo or
the hypervisor reports (``facts.cpu.peak_clock``). Cores boost above a base clock, so a good dgemm
can beat such a "peak". A dgemm can never do more FLOPs per cycle than the SIMD units allow, so one
that beats the nominal peak proves the clock runs at least ``gflops / flops_per_cycle``; ``info``
then builds the peak on that clock (``peak_clock_source`` "measured").

It runs in a child python with every BLAS at one thread (the registry's variables), so this
process's pools and limits are untouched and no thread competes with the measuring one. Opt-in
(``blastune info --measure``): a child python and a dgemm take 0.5-1 s, several times what plain
``info`` takes, so ``info`` measures only when asked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import asdict, dataclass

from blastune.facts.cpu import CpuInfo
from blastune.facts.environment import thread_env

SIZE = 1000
REPEATS = 5

_CHILD = """
import sys, time
import numpy as np
n, repeats = int(sys.argv[1]), int(sys.argv[2])
a = np.random.default_rng(0).random((n, n))
b = a.copy()
a @ b  # warm-up: page faults, the kernel's first-call set-up
best = float("inf")
for _ in range(repeats):
    t = time.perf_counter()
    a @ b
    best = min(best, time.perf_counter() - t)
print(2.0 * n ** 3 / best / 1e9)
"""


@dataclass
class ClockCheck:
    gflops_1thread: float | None  # best of REPEATS dgemm SIZE x SIZE, one thread
    nominal_gflops_per_core: float | None
    above_nominal: bool | None  # the dgemm beat the nominal peak: the clock is higher
    clock_at_least_mhz: float | None  # what the dgemm proves about the clock, when above nominal
    message: str
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def measure_clock(
    cpu: CpuInfo,
    python: str | None = None,
    size: int = SIZE,
    repeats: int = REPEATS,
    timeout: float = 60.0,
) -> ClockCheck:
    """Time a one-thread dgemm in a child and compare it with the nominal peak of one core."""
    nominal = cpu.peak_gflops_per_core
    env = {**os.environ, **thread_env(1)}
    try:
        proc = subprocess.run(
            [python or sys.executable, "-c", _CHILD, str(size), str(repeats)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        rate = float(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
        error = (
            None
            if rate
            else (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        )
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        rate, error = None, f"{type(exc).__name__}: {exc}"
    if rate is None:
        return ClockCheck(
            None, nominal, None, None, f"the dgemm could not be measured: {error}", error
        )
    rate = round(rate, 1)
    ran = f"dgemm {size}x{size} ran at {rate:g} GFLOP/s on one thread"
    if not nominal:
        return ClockCheck(rate, None, None, None, f"{ran}; no nominal peak to compare")
    if rate <= nominal:
        share = f"{100 * rate / nominal:.0f}% of the nominal peak of {nominal:g} per core"
        return ClockCheck(rate, nominal, False, None, f"{ran}: {share}")
    fpc = cpu.flops_per_cycle_fp64
    mhz = round(rate / fpc * 1000) if fpc else None
    clock = f" of at least {mhz:.0f} MHz" if mhz else ""
    stated = f" ({cpu.clock_source})" if cpu.clock_source else ""
    return ClockCheck(
        rate,
        nominal,
        True,
        mhz,
        f"{ran}, above the nominal peak of {nominal:g} per core: the real clock is higher than the "
        f"{cpu.clock_mhz:.0f} MHz stated{stated} -- a clock{clock} (boost)",
    )
