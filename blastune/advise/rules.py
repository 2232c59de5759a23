"""The rules that turn a measurement into advice: which layout, how many BLAS threads per job.

Jobs results (layouts measured side by side): the fastest layout that answers the question; a layout
with fewer BLAS threads wins a near tie (within ``TIE``), because fewer threads leave room for
whatever else runs. Sweep results (one process at several thread counts): for N jobs, the fastest
thread count that fits in N jobs' share of the cores, fewer threads winning within ``SWEEP_TIE``.

Every rule also says whether its evidence is clean: a layout or point disturbed from outside
(``contended``, 0.1.0's ``busy``) or ``unstable`` is noisy, and advice resting on it is noisy too.
A layout that waits because of *itself* (more threads than cores by design) is not noisy: that wait
is what the comparison is about.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blastune.documents.jobs import JobsResult, Layout, LayoutResult, Workload
from blastune.documents.profile import ProfileEntry
from blastune.documents.sweep import SweepDocument, SweepPoint
from blastune.errors import BlastuneError
from blastune.core.counts import per_job

TIE = 0.03  # layouts within 3% of the fastest count as equally fast
SWEEP_TIE = 0.05  # thread counts within 5% of the fastest (one job alone, no contention measured)


@dataclass
class Advice:
    """What a rule decided, in plain data: the layout, the evidence, and how clean it was."""

    layout: Layout
    threads: int
    rationale: list[str]
    measured: LayoutResult | None = None  # the chosen layout's row (jobs results, not extrapolated)
    best: LayoutResult | None = None  # the fastest row measured (jobs results)
    noisy: list[str] = field(default_factory=list)  # why the evidence behind it is not clean
    entries: dict[int, ProfileEntry] = field(default_factory=dict)  # the profile's, by job count
    workload: Workload | None = None  # what was measured: the profile's key for the entries


# --- noise ----------------------------------------------------------------------------------------


def layout_noise(r: LayoutResult) -> str | None:
    why = []
    if r.contended:
        shares = [x for x in r.outside_pcts if x is not None]
        took = f", which took up to {max(shares):.0f}% of the CPU it wanted" if shares else ""
        wait = (
            f", its threads waited {r.wait_pct:.0f}% of the time for a CPU"
            if r.wait_pct is not None
            else ""
        )
        why.append(f"disturbed by other programs{took}{wait}")
    if r.unstable:
        spread = f" (spread {r.spread:.0%})" if r.spread is not None else ""
        why.append(f"unstable{spread}")
    return f"{r.layout.label}: {' and '.join(why)}" if why else None


def point_noise(p: SweepPoint) -> str | None:
    why = []
    if p.disturbed and p.contended:
        why.append(
            f"contended (waited {p.wait_pct:.0f}% of the time for a CPU)"
            if p.wait_pct is not None
            else "contended"
        )
    elif p.disturbed:  # a 0.1.0 file: its busy flag (SweepPoint.disturbed)
        other = f" ({p.other_load_cores:.2f} CPUs)" if p.other_load_cores is not None else ""
        why.append(f"busy: other programs used the CPUs{other}")
    if p.unstable:
        why.append("unstable")
    return f"{p.op} {p.size} at {p.threads} thread(s): {' and '.join(why)}" if why else None


# Noise that could change the choice blocks advice. A layout disturbed by other programs could have
# been any amount faster (a competitor can slow a multi-threaded BLAS tenfold), so it always counts;
# an unstable one could plausibly be 1 + 3 x its spread faster. The naive oversubscribed layout,
# ten times slower and unstable by nature, cannot reach the choice and does not block the advice.
def _could_change(r: LayoutResult, choice: LayoutResult) -> bool:
    if r is choice or r.contended:
        return True
    return r.tasks_per_s * max(1 + 3 * (r.spread or 0.0), 1 + TIE) >= choice.tasks_per_s


def _joined(noise) -> str | None:
    """A profile entry's noise: every reason in one string, None when clean."""
    return "; ".join(noise) or None


def _noise(rows: list[LayoutResult], choice: LayoutResult) -> list[str]:
    """Why the evidence for ``choice`` among ``rows`` is not clean: the noise of the choice itself
    and of every layout whose plausible speed reaches it."""
    return [w for w in (layout_noise(r) for r in rows if _could_change(r, choice)) if w]


# --- jobs results ---------------------------------------------------------------------------------


def threads_of(r: LayoutResult, default: int | None) -> int | None:
    return r.layout.threads if r.layout.threads is not None else (r.threads_seen or default)


def pick(rows: list[LayoutResult]) -> LayoutResult:
    """The fastest row; near ties go to fewer BLAS threads per worker."""
    top = max(r.tasks_per_s for r in rows)
    close = [r for r in rows if r.tasks_per_s >= (1 - TIE) * top]
    return min(
        close, key=lambda r: (r.layout.threads is None, r.layout.threads or 0, -r.tasks_per_s)
    )


def rate(r: LayoutResult) -> str:
    speedup = f" ({r.speedup:.2f}x serial)" if r.speedup else ""
    return f"{r.tasks_per_s:.1f} tasks/s{speedup}"


def extrapolated_layout(jobs: int, threads: int) -> Layout:
    """``jobs`` concurrent jobs (one serial job, else that many processes) of ``threads`` BLAS
    threads."""
    return Layout("serial" if jobs == 1 else "process", jobs, threads)


def _answers(r: LayoutResult, jobs: int) -> bool:
    """N concurrent jobs are N processes (or one serial job): only those layouts answer the
    question."""
    lay = r.layout
    return lay.workers == jobs and lay.executor in (
        ("serial", "process") if jobs == 1 else ("process",)
    )


def from_jobs(res: JobsResult, jobs: int | None, cores: int) -> Advice:
    rows = res.results
    what = f"{res.tasks} tasks of {res.workload.describe()}"
    best = res.best
    entries = entries_from_jobs(res)
    group = rows if jobs is None else [r for r in rows if _answers(r, jobs)]
    if not group:  # nothing measured at ``jobs`` jobs: the cores divided among them
        threads = per_job(cores, jobs)
        lay = extrapolated_layout(jobs, threads)
        why = [
            f"no layout with {jobs} worker processes was measured; {cores} usable cores // "
            f"{jobs} jobs = {threads} BLAS thread(s) each"
            + (", so the jobs do not oversubscribe the cores" if jobs * threads <= cores else ""),
            f"fastest measured: {best.layout.label}, {rate(best)} on {what}",
        ]
        entries[jobs] = ProfileEntry(
            jobs,
            threads,
            lay.spec,
            f"{cores} usable cores // {jobs} jobs (not measured at {jobs} jobs)",
            extrapolated=True,
        )
        return Advice(lay, threads, why, None, best, [], entries, res.workload)
    choice = pick(group)
    why = [f"{choice.layout.label}: {rate(choice)} on {what}"]
    if choice is not best:
        why.append(
            f"{choice.tasks_per_s / best.tasks_per_s:.0%} of the fastest measured layout "
            f"({best.layout.label}, {rate(best)})"
        )
    why += _contrasts(rows, choice, res.default_threads, cores)
    threads = threads_of(choice, res.default_threads) or 1
    noisy = _noise(group, choice)
    return Advice(choice.layout, threads, why, choice, best, noisy, entries, res.workload)


def _contrasts(rows, choice: LayoutResult, default, cores) -> list[str]:
    """The comparisons that explain the choice: naive threads, and threads against processes."""
    out = []
    lay = choice.layout
    for r in rows:
        if r.layout.threads is not None or r is choice:
            continue
        t = r.threads_seen or default
        slower = choice.tasks_per_s / r.tasks_per_s if r.tasks_per_s else None
        if slower is not None and slower > 1 + TIE:
            over = (
                f"{r.layout.workers} x {t} = {r.layout.workers * t} threads on {cores} cores"
                if t
                else "the library's default threads"
            )
            out.append(
                f"the naive layout, {r.layout.label} ({over}), ran {rate(r)}: {slower:.1f}x slower"
            )
    others = sorted(
        (r for r in rows if r is not choice and r.layout.threads is not None),
        key=lambda r: -r.tasks_per_s,
    )
    mentioned = set()
    if lay.executor in ("thread", "process") and lay.threads is not None:
        other = "thread" if lay.executor == "process" else "process"
        twin = next(
            (
                r
                for r in rows
                if r.layout.executor == other
                and r.layout.workers == lay.workers
                and r.layout.threads == lay.threads
            ),
            None,
        )
        if twin is not None:
            mentioned.add(twin.layout.spec)
            # processes overlap the task, threads do not
            gil = (
                twin.layout.executor == "thread"
                and (twin.speedup or 0) < 1.2
                and (choice.speedup or 0) >= 1.4
            )
            out.append(
                f"{twin.layout.label} ran {rate(twin)}"
                + (": the task holds the GIL, so threads cannot overlap it" if gil else "")
            )
    nxt = next((r for r in others if r.layout.spec not in mentioned), None)
    # the baseline is in every "x serial" already
    if nxt is not None and nxt.layout.spec != "serial:1x1":
        out.append(f"next best: {nxt.layout.label}, {rate(nxt)}")
    return out


def entries_from_jobs(res: JobsResult) -> dict[int, ProfileEntry]:
    """Profile entries: for each number of concurrent jobs measured (W processes, or one serial
    job), the best BLAS threads each -- noisy when any layout of that comparison was."""
    by_w: dict[int, list[LayoutResult]] = {}
    for r in res.results:
        if _answers(r, r.layout.workers):
            by_w.setdefault(r.layout.workers, []).append(r)
    entries = {}
    for w, group in sorted(by_w.items()):
        c = pick(group)
        t = threads_of(c, res.default_threads)
        if t:
            why = f"{c.layout.label} measured {rate(c)}"
            entries[w] = ProfileEntry(w, t, c.layout.spec, why, noisy=_joined(_noise(group, c)))
    return entries


# --- sweep results --------------------------------------------------------------------------------


def sweep_workload(doc: SweepDocument) -> tuple[tuple, list[SweepPoint]]:
    """The group advice comes from: the largest BLAS problem (the one whose thread count matters
    most for a job's run time), its points fewest threads first."""
    groups = {}
    for key, pts in doc.groups().items():
        pts = [p for p in pts if p.blas_op]
        # a count the library did not run (ATLAS asked for 2 runs 1) is no evidence for that count
        pts = [p for p in pts if p.ran_as_asked] or pts
        if pts:
            groups[key] = pts
    if not groups:
        raise BlastuneError(
            "the sweep results file has no BLAS points to recommend from: sweep a BLAS op "
            "(e.g. blastune sweep --op dot)"
        )
    order = list(groups)
    key = max(groups, key=lambda k: (k[2], -order.index(k)))
    return key, groups[key]


def from_sweep(doc: SweepDocument, jobs: int | None, cores: int) -> Advice:
    key, pts = sweep_workload(doc)
    op, lib, size, dtype = key

    def choose(n_jobs):
        """The point for ``n_jobs`` jobs, the cores each gets, and the noise of the candidates."""
        room = per_job(cores, n_jobs)
        allowed = [p for p in pts if p.threads <= room] or pts[:1]
        fastest = min(p.median_s for p in allowed)
        best = next(p for p in allowed if p.median_s <= (1 + SWEEP_TIE) * fastest)
        return best, room, [w for w in map(point_noise, allowed) if w]

    n = jobs or 1
    pick_, room, noisy = choose(n)
    times = ", ".join(
        f"{p.threads} thread{'s' if p.threads > 1 else ''} {p.median_s * 1e3:.3g} ms" for p in pts
    )
    why = [
        f"{lib} {op} {size}x{size} {dtype} from the sweep: {times}",
        f"{n} job(s) on {cores} usable cores leave {room} core(s) per job; {pick_.threads} BLAS "
        f"thread(s) is within {SWEEP_TIE:.0%} of the fastest count that fits",
    ]
    one = next((p for p in pts if p.threads == 1), None)
    if one is not None and pick_ is not one:
        why.append(
            f"{pick_.threads} threads are {one.median_s / pick_.median_s:.2f}x faster than 1"
        )
    why.append(
        "the sweep timed one job alone: `blastune jobs` measures jobs running at the same time"
    )
    entries = {}
    for k in sorted({*range(1, cores + 1), n}):
        p, _, noise = choose(k)
        entries[k] = ProfileEntry(
            k,
            p.threads,
            extrapolated_layout(k, p.threads).spec,
            f"sweep of {op} {size}: {p.threads} thread(s) fastest within {k} job(s)' "
            "share of the cores",
            noisy=_joined(noise),
        )
    workload = Workload("op", op, size, True, dtype, lib)
    lay = extrapolated_layout(n, pick_.threads)
    return Advice(lay, pick_.threads, why, None, None, noisy, entries, workload)
