"""Timing one call in this process: warm-up, calibrated loops, repeats until the median is stable.

pyperf's method without its worker processes: sweep starts a fresh process only where a library
reads its thread count at start-up (``sweep/isolated.py``), and times every point here.

1. Warm-up: one timed call (first-touch page faults, BLAS thread start-up, lazy imports) is thrown
   away.
2. Calibration: calls faster than ``min_sample_time`` are looped inside one sample, so the clock's
   resolution and Python's call overhead stay far below the spread we want to see.
3. Adaptive repeats: take at least ``min_repeats`` samples, then keep going until the relative
   spread of the median falls below ``target_spread`` or the point's time budget is spent.

"Spread" -- the one definition blastune uses everywhere (``sweep``, ``jobs``, ``compare``; see
``spread()`` and docs/sweep.md) -- is the relative standard error of the median, estimated robustly
from the interquartile range:

    spread = 1.2533 * (IQR / 1.349) / sqrt(repeats) / median

It needs at least ``MIN_SPREAD_REPEATS`` (3) samples; with fewer it is None and shown as "—".

(IQR / 1.349 is the standard deviation a normal distribution with that IQR would have; 1.2533 =
sqrt(pi/2) turns the standard error of a mean into that of a median). It shrinks as repeats grow, so
more repeats buy a more trustworthy median; one slow outlier (another process stealing a core) moves
the IQR far less than it would move a standard deviation. A point that ends above the target is
flagged ``unstable`` rather than hidden.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import dataclass

# sqrt(pi/2): asymptotic ratio of the standard error of the median to that of the mean (normal data)
_MEDIAN_SE = math.sqrt(math.pi / 2)
# IQR of a standard normal distribution
_NORMAL_IQR = 1.3489795
# fewer samples than this have no spread: two samples give an IQR, but not one worth reporting
MIN_SPREAD_REPEATS = 3
# samples per point at most: past this the median's error no longer shrinks enough to matter
MAX_REPEATS = 1000


@dataclass
class Stats:
    median: float
    q1: float
    q3: float
    iqr: float
    min: float
    max: float
    mean: float
    repeats: int
    spread: float | None  # relative standard error of the median; None with fewer than 3 samples


def quartiles(samples: list[float]) -> tuple[float, float, float]:
    """(q1, median, q3), linear interpolation between order statistics (numpy's default method)."""
    if not samples:
        raise ValueError("no samples")
    if len(samples) == 1:
        return samples[0], samples[0], samples[0]
    q1, q2, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q1, q2, q3


def spread(samples) -> float | None:
    """THE spread of a set of timings: relative standard error of the median, from the IQR.

    ``1.2533 * (IQR / 1.349) / sqrt(n) / median`` -- 0.02 means the median is known to about 2%.
    None with fewer than ``MIN_SPREAD_REPEATS`` samples or a median <= 0 (nothing honest to say).
    """
    samples = list(samples)
    n = len(samples)
    if n < MIN_SPREAD_REPEATS:
        return None
    q1, med, q3 = quartiles(samples)
    if med <= 0:
        return None
    return _MEDIAN_SE * ((q3 - q1) / _NORMAL_IQR) / math.sqrt(n) / med


def summarize(samples: list[float]) -> Stats:
    q1, med, q3 = quartiles(samples)
    return Stats(
        median=med,
        q1=q1,
        q3=q3,
        iqr=q3 - q1,
        min=min(samples),
        max=max(samples),
        mean=statistics.fmean(samples),
        repeats=len(samples),
        spread=spread(samples),
    )


@dataclass
class Measurement:
    """What one point's timing produced. Times are seconds per call."""

    stats: Stats
    samples: list[float]
    loops: int  # calls per sample
    warmup_s: float  # the discarded first call
    elapsed_s: float  # wall time spent on this point, warm-up included
    target_spread: float
    stop: str  # "target" | "budget" | "max_repeats"
    # run-queue wait of the working threads during each sample, in seconds (None: not measured)
    waits_s: list[float] | None = None

    @property
    def unstable(self) -> bool:
        s = self.stats.spread
        return s is None or s > self.target_spread

    @property
    def sample_wait_pct(self) -> list[float] | None:
        """Each sample's wait as a percentage of that sample's wall time (per call x loops)."""
        if self.waits_s is None:
            return None
        return [100.0 * w / max(t * self.loops, 1e-12) for w, t in zip(self.waits_s, self.samples)]

    @property
    def wait_pct(self) -> float | None:
        """The whole point's wait: all samples' wait over all samples' wall time, in percent."""
        if self.waits_s is None:
            return None
        return 100.0 * sum(self.waits_s) / max(sum(self.samples) * self.loops, 1e-12)


def _sample(fn, args, loops, clock):
    if loops == 1:
        t0 = clock()
        fn(*args)
        return clock() - t0
    rng = range(loops)
    t0 = clock()
    for _ in rng:
        fn(*args)
    return (clock() - t0) / loops


def measure(
    fn,
    args=(),
    *,
    target_spread: float = 0.02,
    min_repeats: int = 5,
    budget: float = 10.0,
    max_repeats: int = MAX_REPEATS,
    min_sample_time: float = 0.02,
    clock=time.perf_counter,
    watch=None,
    fresh_args=None,
) -> Measurement:
    """Time ``fn(*args)``: warm-up, calibrate loops, then adaptive repeats (see the module
    docstring).

    ``budget`` (seconds) bounds the adaptive part; ``min_repeats`` samples are always taken, so a
    point whose single call exceeds the budget still gets an honest median and is reported as such.
    ``watch``: brackets every timed sample -- ``token = watch.begin()`` before, ``watch.end(token)``
    after, returning the seconds the working threads waited for a CPU meanwhile (None if unknown).
    The reads happen outside the timed interval, so they cost the sample nothing.
    ``fresh_args(args)``: new copies of the inputs, made before each sample after the first when a
    sample loops over several calls (see ``fresh_copies``). Where an array lands in memory changes
    the speed of a small op for as long as the array lives (measured: ``inv`` of one 200 x 200
    matrix ran 1.15 or 1.65 ms depending on the allocation, and stayed there); timing one allocation
    gives samples that agree with each other and not with the next run. Fresh copies put that
    variation inside the run, where the spread and ``compare`` see it. Single-call samples keep
    their inputs: a copy would be cold in cache for the one call that is timed.
    """
    if min_repeats < 1:
        raise ValueError("min_repeats must be >= 1")
    start = clock()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection landing inside one sample is noise that has nothing to do with BLAS
    waits: list[float] | None = [] if watch is not None else None
    try:
        warm = _sample(fn, args, 1, clock)
        loops = 1
        if warm < min_sample_time:
            # calibrate on a second, warm call: the first may include one-off costs
            per_call = max(_sample(fn, args, 1, clock), 1e-9)
            loops = max(1, math.ceil(min_sample_time / per_call))
            # one more warm-up sample at the calibrated loop count (fills caches the way samples
            # will)
            _sample(fn, args, loops, clock)
        samples: list[float] = []
        stop = "max_repeats"
        while len(samples) < max_repeats:
            if fresh_args is not None and loops > 1 and samples:
                args = fresh_args(args)
            if watch is None:
                samples.append(_sample(fn, args, loops, clock))
            else:
                token = watch.begin()
                samples.append(_sample(fn, args, loops, clock))
                w = watch.end(token)
                if w is None:
                    waits = None
                    watch = None  # the threads can no longer be read: say "unknown", not "no wait"
                else:
                    waits.append(w)
            if len(samples) < min_repeats:
                continue
            now_spread = spread(samples)
            if now_spread is not None and now_spread <= target_spread:
                stop = "target"
                break
            spent = clock() - start
            per_sample = statistics.median(samples) * loops
            if spent + per_sample > budget:
                stop = "budget"
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    return Measurement(
        stats=summarize(samples),
        samples=samples,
        loops=loops,
        warmup_s=warm,
        elapsed_s=clock() - start,
        target_spread=target_spread,
        stop=stop,
        waits_s=waits,
    )


FRESH_MAX_BYTES = 64 * 2**20  # inputs above this are spread over enough pages to average out


def fresh_copies(args: tuple) -> tuple:
    """``args`` with every numpy array copied to a new allocation (the old ones alive meanwhile, so
    the copy cannot land where they were); unchanged when the arrays are large."""
    arrays = [a for a in args if hasattr(a, "copy") and hasattr(a, "nbytes")]
    if not arrays or sum(a.nbytes for a in arrays) > FRESH_MAX_BYTES:
        return args
    return tuple(
        a.copy(order="K") if hasattr(a, "copy") and hasattr(a, "nbytes") else a for a in args
    )
