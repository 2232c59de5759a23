"""``blastune.sweep()``: time BLAS/LAPACK ops (and non-BLAS contrast ops) across sizes and thread
counts.

The steps, each in its own module:

1. ``plan``      -- validate the grid (ops x sizes x dtypes x threads), refuse points that would
                    not fit in memory before allocating anything;
2. ``libraries`` -- which library serves the ops, and whether its thread count can change at run
                    time;
3. ``session``   -- the document, the budget and the writes: the results file is locked for the
                    run and rewritten atomically after every point;
4. ``inprocess`` / ``isolated`` -- measure each point with ``blastune.measure.timing.measure``,
                    the thread count set with ``blastune.limit`` and read back, or (where the
                    library cannot change it at run time, or the read-back disagrees) in a fresh
                    worker process whose environment sets it before numpy is imported; those
                    points say ``isolated``;
5. ``points``    -- the record of each point (with the run-queue wait of its threads, per sample)
                    and the derived figures: speed-up, efficiency, GFLOP/s, % of peak, the best
                    count.

The measure layer returns the typed ``SweepDocument``; every reader (advise, present, cli) reads
the models, and the JSON form is derived from them (``to_dict()``).

SIGINT, SIGTERM and SIGHUP all end a sweep the same way (``signals``): finished points saved with
status ``interrupted``, threads restored, ``SweepInterrupted`` raised with the finished points.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from blastune.core.counts import check_count
from blastune.core.files import SaveFailed
from blastune.documents.sweep import (  # noqa: F401 (API)
    KEY_FIELDS,
    SCHEMA,
    SweepDocument,
    SweepPoint,
)
from blastune.errors import BlastuneError
from blastune.measure.budget import is_seconds
from blastune.measure.ops import DEFAULT_SEED
from blastune.measure.sweep.libraries import library_files, needs_workers, serving_libraries
from blastune.measure.sweep.plan import Plan, check_size, default_threads, make_plan  # noqa: F401
from blastune.measure.sweep.session import Session, Settings, new_document, resumed_document
from blastune.measure.signals import SweepInterrupted, raise_pending, stop_on_signals

DEFAULT_BUDGET = 60.0
DEFAULT_MIN_REPEATS = 5
DEFAULT_TARGET_SPREAD = 0.02
ISOLATE_CHOICES = ("auto", "always", "never")

__all__ = [
    "sweep",
    "SweepResult",
    "SweepInterrupted",
    "SweepDocument",
    "SweepPoint",
    "KEY_FIELDS",
    "default_threads",
    "make_plan",
    "check_settings",
]


@dataclass
class SweepResult:
    """What ``sweep()`` returns: the typed document (``document``); its JSON form is derived from
    it (``to_dict()``), never kept beside it."""

    document: SweepDocument

    @property
    def points(self) -> list[dict]:
        """The points in their JSON form (``document.points`` holds the ``SweepPoint``s)."""
        return [p.to_dict() for p in self.document.points]

    def best(self) -> list[dict]:
        """The best thread count (fewest within noise of the fastest) per (op, lib, size, dtype)
        measured at more than one count."""
        shown = (*KEY_FIELDS, "median_s", "speedup", "efficiency", "unstable", "busy")
        shown += ("contended", "wait_pct")
        return [{k: p.to_dict()[k] for k in shown} for p in self.document.points if p.best]

    def to_dict(self) -> dict:
        return self.document.to_dict()


def check_settings(budget, min_repeats, target_spread, isolate, seed) -> Settings:
    from blastune.measure.timing import MAX_REPEATS

    if not is_seconds(budget):
        raise BlastuneError(f"invalid budget {budget!r}: must be a finite number of seconds > 0")
    min_repeats = check_count(min_repeats, "min repeats", 1, MAX_REPEATS)
    if (
        isinstance(target_spread, bool)
        or not isinstance(target_spread, (int, float))
        or not 0 < target_spread < 1
    ):
        raise BlastuneError(
            f"invalid target spread {target_spread!r}: must be a fraction above 0 and below 1, "
            "e.g. 0.02 (2%)"
        )
    if isolate not in ISOLATE_CHOICES:
        raise BlastuneError(f"invalid isolate {isolate!r}: choose auto, always or never")
    seed = check_count(seed, "seed", 0, 2**32 - 1)
    return Settings(float(budget), min_repeats, float(target_spread), seed, isolate)


def _open_session(
    plan: Plan, settings: Settings, out, force: bool, resume: bool, on_point
) -> Session:
    """Check and lock the output, build the document (or continue the saved one)."""
    from blastune.core.files import check_output

    if out is not None:
        check_output(
            out,
            force=force,
            resume=resume,
            what="results file",
            option="force=True",
            resume_option="resume=True",
            rewritten=True,
        )
    served = serving_libraries(plan.lib)
    workers, reason = needs_workers(served)
    if settings.isolate == "always":
        workers, reason = True, "asked for (--isolate)"
    elif settings.isolate == "never":
        workers = False
    doc = new_document(plan, settings, served, reason if workers else None)
    session = Session(doc, out=out, on_point=on_point)
    try:
        session.lock()  # before reading a file to resume: nobody may change it under us
        if out is not None and resume and out.exists():
            session.doc = resumed_document(SweepDocument.load(out), doc, out)
    except BaseException:
        session.__exit__(None, None, None)
        raise
    session.in_workers = workers
    session.files = library_files(served)
    if not session.files:
        session.doc.warnings.append(
            f"could not identify the BLAS {plan.lib} calls: thread counts were set but "
            "not read back"
        )
    return session


def _measure(session: Session, plan: Plan) -> None:
    """Run every point of ``plan`` not already in the document, in this process or in workers."""
    from blastune.measure.sweep.inprocess import run_inprocess
    from blastune.measure.sweep.isolated import run_in_workers

    done = {p.key for p in session.doc.points}
    todo = [(o, n, d, t) for (o, n, d, t) in plan.points() if (o, plan.lib, n, d, t) not in done]
    session.on_point(
        "plan",
        {
            "total": len(todo),
            "already_done": plan.total - len(todo),
            "budget_s": session.budget.seconds,
        },
    )
    session.start_clock(len(todo))
    session.write()  # fail early if the file cannot be written, and mark it as in progress
    if session.in_workers:
        run_in_workers(session, todo)
        return
    deferred = run_inprocess(session, todo, session.files)
    if deferred:
        session.doc.isolation = (
            "the library did not report the thread counts it was given; measured in workers"
        )
        session.doc.warnings.append(session.doc.isolation)
        run_in_workers(session, deferred)


def sweep(
    ops="dot",
    sizes=(1000,),
    threads=None,
    dtypes=("float64",),
    lib="numpy",
    *,
    budget: float = DEFAULT_BUDGET,
    min_repeats: int = DEFAULT_MIN_REPEATS,
    target_spread: float = DEFAULT_TARGET_SPREAD,
    out=None,
    force: bool = False,
    resume: bool = False,
    isolate: str = "auto",
    seed: int = DEFAULT_SEED,
    on_point=None,
) -> SweepResult:
    """Run the grid and return (and, with ``out``, save after every point) a blastune.sweep/1
    document.

    ``budget``: seconds of measuring; no point starts after it is spent (the first always runs), so
    the sweep ends within it plus one point -- those left out are listed in ``not_measured`` and the
    status is ``partial`` (``resume=True`` measures them later).
    ``isolate``: "auto" (workers only where threads cannot change at run time), "always", "never".
    ``out``: an existing file is refused unless ``force=True`` (start over) or ``resume=True``
    (continue it); it is locked while the sweep runs, so a second sweep on it is refused.
    ``on_point(event, data)`` is called with ("plan", {"total": N, ...}), ("start", point-spec) and
    ("done", point-record) -- the CLI drives its progress bar from it.
    On SIGINT, SIGTERM or SIGHUP the document is saved with status "interrupted" and
    ``SweepInterrupted`` (a KeyboardInterrupt) is raised, its ``result`` holding the finished
    points.
    """
    if force and resume:  # worded for the command line too: it relies on this check
        raise BlastuneError("give force (start over) or resume (continue), not both")
    settings = check_settings(budget, min_repeats, target_spread, isolate, seed)
    plan = make_plan(ops, sizes, threads, dtypes, lib)
    out = Path(out) if out is not None else None
    with (
        stop_on_signals(SweepInterrupted) as stopping,
        _open_session(plan, settings, out, force, resume, on_point) as session,
    ):
        try:
            _measure(session, plan)
            raise_pending()  # a stop dropped on its way is a stop: never "complete" after one
        except KeyboardInterrupt as exc:
            signum = exc.signum if isinstance(exc, SweepInterrupted) else (stopping.signum or 2)
            saved_to, save_error = out, None
            try:
                session.finish("interrupted")
            except SaveFailed as failed:  # a full disk: the points are in the fallback file
                saved_to, save_error = failed.fallback, str(failed)
            stop = SweepInterrupted(signum, SweepResult(session.doc), saved_to)
            stop.save_error = save_error
            raise stop from None
        except BaseException as exc:
            try:
                session.finish("failed")
            except BlastuneError:  # the disk that failed the point fails this write too
                pass  # the first error says why
            if isinstance(exc, SaveFailed):
                exc.result = SweepResult(session.doc)
            raise
        try:
            session.finish("complete")
        except SaveFailed as failed:
            failed.result = SweepResult(session.doc)
            raise
        return SweepResult(session.doc)
