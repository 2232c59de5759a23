"""From timed batches to the figures of a layout, and what they can and cannot be trusted for.

Pure functions on ``documents.jobs`` objects; no processes, no clocks.

Contention (see docs/jobs.md, "Contention"): per batch, ``lost_pct`` is the CPU the layout's
runnable threads wanted and did not get, beyond what its own oversubscription explains. A batch is
contended -- disturbed from outside -- when ``lost_pct`` exceeds ``CONTENDED_WAIT_PCT`` while other
programs used more than ``OTHER_CORES_DISTURBING`` CPUs; where
schedstat is missing, when other programs used more than ``OTHER_CORES_CONTENDED`` CPUs meanwhile.
``wait_pct`` (raw wait, self-inflicted included) is kept: for a layout that oversubscribes by design
it is the measurement of that oversubscription, not a disturbance.
"""
from __future__ import annotations

import statistics

from blastune.documents.jobs import LayoutResult
from blastune.facts.schedstat import CONTENDED_WAIT_PCT
from blastune.measure.timing import spread

UNSTABLE_SPREAD = 0.05        # relative standard error of the median above this: unstable
OTHER_CORES_CONTENDED = 0.25  # without schedstat: other programs on this many CPUs = contended
OTHER_CORES_DISTURBING = 0.05  # with schedstat: lost CPU counts as outside disturbance only beside this
BOUND_SLACK = 0.01            # a figure within 1% of its physical bound is rounding, not a violation


def lost_pct(cpu_s: float, wait_s: float, wall_s: float, cores: int) -> float:
    """CPU the threads wanted and did not get, beyond what their own number explains, % of one CPU.

    They ran ``cpu_s / wall_s`` CPUs' worth and waited ``wait_s / wall_s``: they wanted the sum and
    could have had ``min(cores, sum)``. 2 threads on 2 idle cores lose nothing; 4 threads on 2 idle
    cores wait 200% yet lose nothing (they ran on both cores all along); 2 threads beside a CPU-bound
    competitor run ~1.3 CPUs and lose ~70%."""
    span = max(wall_s, 1e-9)
    got, wanted = cpu_s / span, (cpu_s + wait_s) / span
    return 100.0 * max(0.0, min(float(cores), wanted) - got)


def batch_contended(batch: dict, others: float | None = None) -> bool:
    """Disturbed from outside: the layout's threads lost CPU *and* other programs used CPU meanwhile.

    Lost CPU alone is not enough: a layout that fills every core also competes with its own
    dispatching (the pool's feeder and result threads), and on a quiet machine loses a few percent
    of a CPU to wake-up latency with no one else running (measured here: up to 7% with other
    programs at 0.00 CPUs). ``others``: the CPUs other programs used, averaged over all the
    layout's batches -- /proc/stat counts in 10 ms ticks, so one 5 ms batch reads 0.0 or 2.7 CPUs
    for the same competitor; the layout's total is the figure to trust. Where it is missing, lost
    CPU decides alone."""
    lost = batch.get("lost_pct")
    other = batch.get("other_cores") if others is None else others
    if lost is not None:
        outside = other is None or other > OTHER_CORES_DISTURBING
        return lost > CONTENDED_WAIT_PCT and outside
    return other is not None and other > OTHER_CORES_CONTENDED


def others_over_batches(*results: LayoutResult, min_wall_s: float = 0.0) -> float | None:
    """Other programs' CPUs over all the batches of ``results``, weighted by their wall time; None
    when unknown or when the batches add up to less than ``min_wall_s``."""
    pairs = [(w, o) for r in results for w, o in zip(r.walls, r.other_cores) if o is not None]
    total = sum(w for w, _ in pairs)
    if not pairs or total <= 0 or total < min_wall_s:
        return None
    return sum(w * o for w, o in pairs) / total


def add_batch(res: LayoutResult, batch: dict) -> None:
    res.walls.append(batch["wall"])
    res.cpus.append(batch["cpu"])
    res.wait_pcts.append(batch["wait_pct"])
    res.lost_pcts.append(batch["lost_pct"])
    res.other_cores.append(batch["other_cores"])
    res.contended_batches.append(batch_contended(batch))


def demand(res: LayoutResult) -> int | None:
    """Threads the layout keeps runnable at once: workers x BLAS threads (a GIL-bound thread layout
    cannot exceed one, but its threads are not runnable-and-waiting either, so the product is fine)."""
    t = res.threads_seen or res.layout.threads
    return None if t is None else res.layout.workers * t


def summarize(res: LayoutResult, tasks: int, cores: int) -> LayoutResult:
    """Median wall, CPU and wait over the batches, the spread, and the contention verdict."""
    res.wall_s = statistics.median(res.walls)
    res.spread = spread(res.walls)
    res.unstable = res.spread is not None and res.spread > UNSTABLE_SPREAD
    res.tasks_per_s = tasks / res.wall_s if res.wall_s else float("inf")
    known = [c for c in res.cpus if c is not None]
    res.cpu_s = statistics.median(known) if known and len(known) == len(res.cpus) else None
    res.busy_cores = res.cpu_s / res.wall_s if res.cpu_s is not None and res.wall_s else None
    waits = [w for w in res.wait_pcts if w is not None]
    res.wait_pct = statistics.median(waits) if waits else None
    d = demand(res)
    res.self_oversubscribed = d is not None and d > cores
    res.expected_wait_pct = 100.0 * max(0, d - cores) if d is not None else 0.0
    others = others_over_batches(res)
    res.contended_batches = [batch_contended({"lost_pct": lost, "other_cores": other}, others)
                             for lost, other in zip(res.lost_pcts, res.other_cores)]
    res.contended = any(res.contended_batches)
    return res


def compare(results: list[LayoutResult], cores: int, warnings: list[str]) -> None:
    """Speed-up and CPU efficiency against the serial baseline; notes; figures beyond physical bounds."""
    base = results[0]
    for r in results:
        r.speedup = base.wall_s / r.wall_s if r.wall_s else None
        if r.cpu_s and base.cpu_s is not None:
            r.cpu_efficiency = base.cpu_s / r.cpu_s
        lay = r.layout
        if r.unstable:
            warnings.append(f"{lay.label}: unstable, the median's standard error is {r.spread:.0%} of it")
        if r.threads_seen is not None and lay.workers * r.threads_seen > cores:
            r.notes.append(f"oversubscribed: {lay.workers} x {r.threads_seen} threads on {cores} cores"
                           + (f", its threads waited {r.wait_pct:.0f}% (self-inflicted)" if r.wait_pct else ""))
        if r.contended:
            n = sum(r.contended_batches)
            lost = max((x for x in r.lost_pcts if x is not None), default=None)
            how = f"lost up to {lost:.0f}% of a CPU to other programs" if lost is not None else \
                "other programs were busy meanwhile"
            r.notes.append(f"contended: {n} of {len(r.walls)} batch(es) {how}; re-run on a quieter machine")
        # one busy core per single-threaded worker is what such a layout should show; much less means
        # the cores went to someone else (or the tasks wait), so its speed-up says little about the layout
        expected = min(lay.workers, cores) if lay.threads == 1 and lay.executor in ("serial", "process") else None
        if expected and r.busy_cores is not None and r.busy_cores < 0.75 * expected:
            r.notes.append(f"kept only {r.busy_cores:.2f} of {expected} core(s) busy: other programs took the "
                           "rest, or the tasks wait (I/O, locks)")
        if lay.threads is not None and r.threads_seen is not None and r.threads_seen != lay.threads:
            r.notes.append(f"asked for {lay.threads} BLAS threads, the library runs {r.threads_seen} (it caps "
                           "the count, or reads it only at start-up)")
        _bounds(r, base, cores)


def _bounds(r: LayoutResult, base: LayoutResult, cores: int) -> None:
    """Mark figures no layout can physically reach: they measure noise, not the layout."""
    r.beyond_bounds = {}
    if r is base:
        return
    used = demand(r)
    limit = min(used, cores) if used is not None else cores
    if r.speedup is not None and r.speedup > limit * (1 + BOUND_SLACK):
        why = f"{limit} CPU(s) it could use" if used is None or used >= cores else \
            f"{r.layout.workers} worker(s) x {used // r.layout.workers} thread(s) it used"
        r.beyond_bounds["speedup"] = (f"above {limit}x, the {why}: noise, or the serial baseline was slowed "
                                      "(contended or unstable)")
    if r.cpu_efficiency is not None and r.cpu_efficiency > 1 + BOUND_SLACK:
        r.beyond_bounds["cpu_efficiency"] = ("above 100%: the serial baseline burnt more CPU per task than this "
                                             "layout, which no layout can do -- noise in the baseline")
