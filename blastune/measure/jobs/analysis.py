"""From timed batches to the figures of a layout, and what they can and cannot be trusted for.

Pure functions on ``documents.jobs`` objects; no processes, no clocks.

Contention (see docs/jobs.md, "Contention"): per batch, ``lost_pct`` is the CPU the layout's
runnable threads wanted and did not get, beyond what its own oversubscription explains (in % of one
CPU, as 0.2.0 saved it). A batch is contended -- disturbed from outside -- by THE rule of
``measure.contention.judge``: at most the CPU other programs really used (``other_cores``, the
hypervisor's steal among it) counts as outside disturbance, and it must exceed
``CONTENDED_SHARE_PCT`` of the CPU the layout wanted (its threads, at most the usable cores). The
CPU blastune's own harness -- the layout's host process -- used is reported as the host's share,
never as other programs'. ``wait_pct`` (raw wait, self-inflicted included) is kept: for a layout
that oversubscribes by design it is the measurement of that oversubscription, not a disturbance.

``rejudge`` applies today's rule to a saved document (0.2.0's included) from its raw batch figures;
its stored flags are not trusted.
"""

from __future__ import annotations

import statistics

from blastune.documents.jobs import Contention, JobsResult, LayoutResult
from blastune.measure.contention import BUSY_SHARE_PCT, CONTENDED_SHARE_PCT, RULE, judge
from blastune.measure.load import TICK_S
from blastune.measure.timing import spread

UNSTABLE_SPREAD = 0.05  # relative standard error of the median above this: unstable
BOUND_SLACK = 0.01  # a figure within 1% of its physical bound is rounding, not a violation
# A process layout whose workers kept less than this share of the cores they could use busy: the
# cores went to someone else, or the tasks wait (a share: the same on 2 cores as on 128)
BUSY_SHARE_EXPECTED = 0.75
CONTENDED_WARNING = "disturbed by other programs (contended batches)"
CONTENDED_NOTE = "contended:"


def lost_pct(cpu_s: float, wait_s: float, wall_s: float, cores: int) -> float:
    """CPU the threads wanted and did not get, beyond what their own number explains, % of one CPU.

    They ran ``cpu_s / wall_s`` CPUs' worth and waited ``wait_s / wall_s``: they wanted the sum and
    could have had ``min(cores, sum)``. 2 threads on 2 idle cores lose nothing; 4 threads on 2 idle
    cores wait 200% yet lose nothing (they ran on both cores all along); 2 threads beside a
    CPU-bound competitor run ~1.3 CPUs and lose ~70%."""
    span = max(wall_s, 1e-9)
    got, wanted = cpu_s / span, (cpu_s + wait_s) / span
    return 100.0 * max(0.0, min(float(cores), wanted) - got)


def wanted_cores(res: LayoutResult, cores: int) -> float:
    """The CPU the layout wanted: its workers x BLAS threads, at most the usable cores (at least
    one)."""
    d = demand(res)
    return float(max(1, min(d, cores))) if d is not None else float(cores)


def batch_verdict(
    batch: dict, others: float | None = None, wanted: float = 1.0, cores: int | None = None
):
    """``measure.contention.judge`` on one batch's figures (``Verdict``); ``wanted`` defaults to
    one CPU, the strictest. ``others``: the CPUs other programs used, averaged over all the
    layout's batches -- /proc/stat counts in 10 ms ticks, so one 5 ms batch reads 0.0 or 2.7 CPUs
    for the same competitor; the layout's total is the figure to trust (None: the batch's own)."""
    lost = batch.get("lost_pct")
    other = batch.get("other_cores") if others is None else others
    return judge(
        None if lost is None else lost / 100.0,
        other,
        wanted,
        steal_cpus=batch.get("steal_cores"),
        usable=cores,
    )


def others_over_batches(*results: LayoutResult, min_wall_s: float = 0.0) -> float | None:
    """Other programs' CPUs over all the batches of ``results``, weighted by their wall time; None
    when unknown or when the batches add up to less than ``min_wall_s``."""
    pairs = [(w, o) for r in results for w, o in zip(r.walls, r.other_cores) if o is not None]
    total = sum(w for w, _ in pairs)
    if not pairs or total <= 0 or total < min_wall_s:
        return None
    return sum(w * o for w, o in pairs) / total


def steal_over_batches(res: LayoutResult) -> float | None:
    """The hypervisor's steal over the layout's batches, in CPUs, less one /proc/stat tick per
    batch (a reading's resolution: one tick over a 20 ms batch reads as half a CPU stolen).
    None: unknown."""
    pairs = [(w, s) for w, s in zip(res.walls, res.steal_cores) if s is not None]
    total = sum(w for w, _ in pairs)
    if not pairs or total <= 0:
        return None
    return max(0.0, sum(w * s for w, s in pairs) - len(pairs) * TICK_S) / total


def add_batch(res: LayoutResult, batch: dict) -> None:
    res.walls.append(batch["wall"])
    res.cpus.append(batch["cpu"])
    res.wait_pcts.append(batch["wait_pct"])
    res.lost_pcts.append(batch["lost_pct"])
    res.other_cores.append(batch["other_cores"])
    res.steal_cores.append(batch.get("steal_cores"))
    res.host_cpus.append(batch.get("host_cpu"))
    res.host_wait_pcts.append(batch.get("host_wait_pct"))
    if batch.get("tasks") is not None:
        res.tasks = batch["tasks"]
    # the contention flags are judged over all the layout's batches (``judge_layout``)


def demand(res: LayoutResult) -> int | None:
    """Threads the layout keeps runnable at once: workers x BLAS threads (a GIL-bound thread layout
    cannot exceed one, but its threads are not runnable-and-waiting either, so the product is
    fine)."""
    t = res.threads_seen or res.layout.threads
    return None if t is None else res.layout.workers * t


def summarize(res: LayoutResult, tasks: int, cores: int) -> LayoutResult:
    """Median wall, CPU and wait over the batches, the spread, the host's share, and the
    contention verdict. ``tasks``: the document's task count (a layout given more keeps its own,
    ``res.tasks``)."""
    res.wall_s = statistics.median(res.walls)
    res.spread = spread(res.walls)
    res.unstable = res.spread is not None and res.spread > UNSTABLE_SPREAD
    res.tasks_per_s = (res.tasks or tasks) / res.wall_s if res.wall_s else float("inf")
    known = [c for c in res.cpus if c is not None]
    res.cpu_s = statistics.median(known) if known and len(known) == len(res.cpus) else None
    res.busy_cores = res.cpu_s / res.wall_s if res.cpu_s is not None and res.wall_s else None
    waits = [w for w in res.wait_pcts if w is not None]
    res.wait_pct = statistics.median(waits) if waits else None
    d = demand(res)
    res.self_oversubscribed = d is not None and d > cores
    res.expected_wait_pct = 100.0 * max(0, d - cores) if d is not None else 0.0
    res.wanted_cores = wanted_cores(res, cores)
    hosts = [
        100.0 * h / (w * res.wanted_cores)
        for h, w in zip(res.host_cpus, res.walls)
        if h is not None and w > 0
    ]
    res.host_pct = statistics.median(hosts) if hosts else None
    judge_layout(res, cores)
    return res


def judge_layout(res: LayoutResult, cores: int) -> None:
    """The contention verdict of every batch of ``res`` by today's rule, and the layout's."""
    others = others_over_batches(res)
    steal = steal_over_batches(res)
    wanted = res.wanted_cores or wanted_cores(res, cores)
    n = len(res.walls)

    def at(values, i):
        return values[i] if i < len(values) else None

    verdicts = [
        batch_verdict(
            {
                "lost_pct": at(res.lost_pcts, i),
                "other_cores": at(res.other_cores, i),
                "steal_cores": steal,
            },
            others,
            wanted,
            cores,
        )
        for i in range(n)
    ]
    res.contended_batches = [bool(v.contended) for v in verdicts]
    res.outside_pcts = [
        None if v.outside_pct is None else round(v.outside_pct, 3) for v in verdicts
    ]
    res.contended = any(res.contended_batches)


def compare(results: list[LayoutResult], cores: int, warnings: list[str]) -> None:
    """Speed-up and CPU efficiency against the serial baseline; notes; figures beyond physical
    bounds."""
    base = results[0]
    for r in results:
        # rates, not walls: a layout whose batch would have been short ran more tasks (res.tasks)
        r.speedup = r.tasks_per_s / base.tasks_per_s if base.tasks_per_s and r.wall_s else None
        if r.cpu_s and base.cpu_s is not None and base.tasks_per_s and r.tasks_per_s:
            # CPU per task: baseline's / this layout's
            r.cpu_efficiency = (base.cpu_s / (base.wall_s * base.tasks_per_s)) / (
                r.cpu_s / (r.wall_s * r.tasks_per_s)
            )
        lay = r.layout
        if r.unstable:
            warnings.append(
                f"{lay.label}: unstable, the median's standard error is {r.spread:.0%} of it"
            )
        if r.threads_seen is not None and lay.workers * r.threads_seen > cores:
            r.notes.append(
                f"oversubscribed: {lay.workers} x {r.threads_seen} threads on {cores} cores"
                + (f", its threads waited {r.wait_pct:.0f}% (self-inflicted)" if r.wait_pct else "")
            )
        note = contended_note(r)
        if note:
            r.notes.append(note)
        if r.host_pct is not None and lay.executor == "process":
            r.notes.append(host_note(r))
        # one busy core per single-threaded worker is what such a layout should show; much less
        # means the cores went to someone else (or the tasks wait), so its speed-up says little
        # about the layout
        expected = (
            min(lay.workers, cores)
            if lay.threads == 1 and lay.executor in ("serial", "process")
            else None
        )
        if expected and r.busy_cores is not None and r.busy_cores < BUSY_SHARE_EXPECTED * expected:
            r.notes.append(
                f"kept only {r.busy_cores:.2f} of {expected} core(s) busy: other programs took the "
                "rest, or the tasks wait (I/O, locks)"
            )
        if lay.threads is not None and r.threads_seen is not None and r.threads_seen != lay.threads:
            r.notes.append(
                f"asked for {lay.threads} BLAS threads, the library runs {r.threads_seen} (it caps "
                "the count, or reads it only at start-up)"
            )
        _bounds(r, base, cores)


def contended_note(r: LayoutResult) -> str | None:
    """The table note of a contended layout: how many batches, and the share others took."""
    if not r.contended:
        return None
    n = sum(r.contended_batches)
    shares = [x for x in r.outside_pcts if x is not None]
    if shares:
        of = f"the {r.wanted_cores:g} CPU(s)" if r.wanted_cores else "the CPU"
        how = f"other programs took up to {max(shares):.0f}% of {of} it wanted"
    else:
        how = "other programs were busy meanwhile"
    return f"{CONTENDED_NOTE} {n} of {len(r.walls)} batch(es): {how}; re-run on a quieter machine"


def host_note(r: LayoutResult) -> str:
    """The table note naming blastune's own harness: the layout's host process in its batches."""
    waits = [w for w in r.host_wait_pcts if w is not None]
    wait = f", waited {statistics.median(waits):.0f}%" if waits else ""
    return f"host share {r.host_pct:.1f}% of the CPU wanted (blastune's harness{wait})"


def contention_warning(results: list[LayoutResult]) -> str | None:
    contended = [r.layout.spec for r in results if r.contended]
    if not contended:
        return None
    return (
        f"{CONTENDED_WARNING}: {', '.join(contended)}; advice from these layouts is refused: "
        "re-run on a quieter machine"
    )


def rejudge(doc: JobsResult) -> JobsResult:
    """``doc`` (a saved document, 0.2.0's included) judged by today's contention rule from its raw
    batch figures -- lost CPU, other programs' CPU, steal -- in place: the per-batch and per-layout
    flags, the contention notes and warning, and ``doc.contention`` are replaced. Documents without
    per-batch figures (0.1.0) keep their flags: there is nothing to judge them by."""
    if doc.contention is None or not any(r.lost_pcts or r.other_cores for r in doc.results):
        return doc
    cores = doc.usable_cores
    for r in doc.results:
        if not r.wanted_cores:
            r.wanted_cores = wanted_cores(r, cores)
        judge_layout(r, cores)
        r.notes = [n for n in r.notes if not n.startswith(CONTENDED_NOTE)]
        note = contended_note(r)
        if note:
            r.notes.append(note)
    doc.warnings = [w for w in doc.warnings if not w.startswith(CONTENDED_WARNING)]
    warning = contention_warning(doc.results)
    if warning:
        doc.warnings.append(warning)
    was = doc.contention.rule
    doc.contention = contention_record(doc.contention.source, doc.contention.note)
    if was != RULE:
        doc.contention.rejudged_from = was or "lost-cpu"
    return doc


def contention_record(source: str | None, note: str = "") -> Contention:
    """How this module judges contention, for the document."""
    return Contention(
        source=source,
        threshold_pct=CONTENDED_SHARE_PCT,
        other_cores_threshold=None,
        note=note,
        rule=RULE,
        busy_share_pct=BUSY_SHARE_PCT,
    )


def _bounds(r: LayoutResult, base: LayoutResult, cores: int) -> None:
    """Mark figures no layout can physically reach: they measure noise, not the layout."""
    r.beyond_bounds = {}
    if r is base:
        return
    used = demand(r)
    limit = min(used, cores) if used is not None else cores
    if r.speedup is not None and r.speedup > limit * (1 + BOUND_SLACK):
        why = (
            f"{limit} CPU(s) it could use"
            if used is None or used >= cores
            else f"{r.layout.workers} worker(s) x {used // r.layout.workers} thread(s) it used"
        )
        r.beyond_bounds["speedup"] = (
            f"above {limit}x, the {why}: noise, or the serial baseline was slowed "
            "(contended or unstable)"
        )
    if r.cpu_efficiency is not None and r.cpu_efficiency > 1 + BOUND_SLACK:
        r.beyond_bounds["cpu_efficiency"] = (
            "above 100%: the serial baseline burnt more CPU per task than this "
            "layout, which no layout can do -- noise in the baseline"
        )
