"""A sweep in progress: the document, the budget and the writes, owned by one object.

``Session`` holds the ``SweepDocument`` being filled, the results file (locked for the whole run, so
a second sweep on the same ``--out`` is refused instead of silently overwriting this one's points),
and the budget clock. Runners (``inprocess``, ``workers``) ask it how much time a point may take,
whether another point may start, and hand it each finished point; it derives the figures and
rewrites the file atomically after every point, so a crash or a signal loses only the point in
flight.
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from blastune.measure.signals import raise_pending
from blastune.measure.budget import Budget
from blastune.documents.sweep import SCHEMA, SweepCpu, SweepDocument, SweepGrid, SweepPoint
from blastune.errors import BlastuneError
from blastune.measure.contention import (
    BUSY_SHARE_PCT,
    CONTENDED_WAIT_PCT,
    SOURCE_LOAD_PROBE,
    source as contention_source,
)
from blastune.measure.sweep.plan import Plan
from blastune.measure.sweep.points import derive, now


@dataclass
class Settings:
    budget_s: float
    min_repeats: int
    target_spread: float
    seed: int
    isolate: str

    def to_dict(self) -> dict:
        return {**asdict(self), "timer": "time.perf_counter", "warmups": 1}


def fingerprint_differences(old: dict | None, new: dict) -> str:
    """What differs between two fingerprints, in words ("usable_cores 4, here 2")."""
    old = old if isinstance(old, dict) else {}
    keys = ("cpu_model", "machine", "simd", "usable_cores", "libraries")
    diffs = [f"{k} {old.get(k)!r}, here {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
    return "; ".join(diffs) or f"fingerprint {old.get('id')}, here {new.get('id')}"


def new_document(
    plan: Plan, settings: Settings, served: dict, isolation: str | None
) -> SweepDocument:
    from blastune import __version__
    from blastune.facts.cpu import cpu_info
    from blastune.facts.fingerprint import fingerprint

    cpu = cpu_info()
    src = contention_source()
    return SweepDocument(
        schema=SCHEMA,
        blastune_version=__version__,
        created=now(),
        updated=now(),
        status="running",
        fingerprint=fingerprint(cpu),
        cpu=SweepCpu(
            model=cpu.model,
            usable_cores=cpu.usable_cores,
            simd=cpu.simd,
            peak_gflops_per_core=cpu.peak_gflops_per_core,
            peak_basis=cpu.peak_basis,
        ),
        python=sys.version.split()[0],
        libraries={plan.lib: served},
        isolation=isolation,
        settings=settings.to_dict(),
        grid=SweepGrid(
            ops=list(plan.ops),
            sizes=list(plan.sizes),
            threads=list(plan.threads),
            dtypes=list(plan.dtypes),
            lib=plan.lib,
        ),
        skipped=list(plan.skipped),
        points=[],
        warnings=[],
        contention_source=src,
        contended_wait_pct=CONTENDED_WAIT_PCT,
    )


def resumed_document(old: SweepDocument, fresh: SweepDocument, path) -> SweepDocument:
    """``fresh`` carrying on ``old``: its points, its creation time, the union of both grids."""
    if old.fingerprint.get("id") != fresh.fingerprint.get("id"):
        raise BlastuneError(
            f"{path} was measured on another machine or BLAS "
            f"({fingerprint_differences(old.fingerprint, fresh.fingerprint)}): "
            "start over with force, or choose another output file"
        )
    fresh.created = old.created or fresh.created
    fresh.points = list(old.points)
    fresh.libraries = {**old.libraries, **fresh.libraries}
    for k in ("ops", "sizes", "threads", "dtypes"):
        setattr(fresh.grid, k, list(dict.fromkeys(getattr(old.grid, k) + getattr(fresh.grid, k))))
    fresh.resumed = (old.resumed or 0) + 1
    fresh.warnings = []
    return fresh


class Session:
    """One run of a sweep: see the module docstring. Use as a context manager (it holds the
    lock)."""

    def __init__(
        self, doc: SweepDocument, *, out: Path | None = None, on_point=None, clock=time.monotonic
    ):
        self.doc = doc
        self.out = out
        self.on_point = on_point or (lambda event, data: None)
        self.budget = Budget(float(doc.settings.get("budget_s") or 60.0), clock)
        self.measured = 0  # points finished in this run
        self.to_run = 0  # points this run set out to measure
        # every thread count in a fresh process (see libraries.needs_workers)
        self.in_workers = False
        self.files: list[str] = []  # the serving libraries' files, for thread read-backs
        self.fallback: Path | None = None  # where the points went when ``out`` could not take them
        self._stack = ExitStack()

    # --- lifetime -------------------------------------------------------------------------------
    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def lock(self) -> None:
        """Own ``out`` until the session ends: a second sweep on it is refused in one line."""
        if self.out is not None:
            from blastune.core.files import output_lock

            self._stack.enter_context(output_lock(self.out, "results file"))

    # --- the budget -----------------------------------------------------------------------------
    def start_clock(self, points: int) -> None:
        self.budget.start()
        self.to_run = points

    def may_start(self) -> bool:
        """Start another point? Always the first (a sweep measures something); after that only while
        the budget lasts -- so a sweep ends within its budget plus at most one point."""
        return self.measured == 0 or self.budget.left_s() > 0

    def share_s(self, points: int = 1) -> float:
        """Seconds ``points`` of the points still to run may spend: the budget left, shared
        evenly."""
        remaining = max(1, self.to_run - self.measured)
        return self.budget.left_s() * min(points, remaining) / remaining

    # --- the document ---------------------------------------------------------------------------
    def add(self, point: SweepPoint) -> None:
        """A finished point: replace any earlier one with its key, save, tell the caller."""
        self.doc.points = [p for p in self.doc.points if p.key != point.key] + [point]
        self.measured += 1
        self.write()
        self.on_point("done", point.to_dict())
        raise_pending()  # a stop that arrived inside a __del__ ends the sweep here, its point saved

    def not_measured(self, spec: dict) -> None:
        self.doc.not_measured.append(dict(spec))

    def write(self) -> None:
        self.doc.updated = now()
        derive(self.doc)
        if self.out is not None:
            import json

            from blastune.core.files import write_output

            text = json.dumps(self.doc.to_dict(), indent=2, default=str) + "\n"
            try:
                write_output(self.out, text, what="results file")
            except BlastuneError as exc:
                self._keep_safe(exc, text)
                raise

    def _keep_safe(self, exc: BlastuneError, text: str) -> None:
        """A save failed (a full disk): the points are not thrown away but kept in a fallback file,
        and the error says where (``SaveFailed``). Nothing measured yet: the first error stands."""
        from blastune.core.files import SaveFailed, keep_safe

        if not self.doc.points:
            return
        self.fallback = keep_safe(self.out, text, self.fallback)
        n = len(self.doc.points)
        where = (
            f"the {n} point(s) measured are kept in {self.fallback}"
            if self.fallback
            else f"the {n} point(s) measured could not be kept anywhere (the table shows them)"
        )
        raise SaveFailed(f"{exc}; {where}", self.fallback, None) from None

    def finish(self, status: str) -> None:
        """The last write: status, and the warnings that summarise what the points say."""
        if status == "complete" and self.doc.not_measured:
            status = "partial"
        self.doc.status = status
        self.doc.warnings = [w for w in self.doc.warnings if w] + self.summary()
        self.write()

    def summary(self) -> list[str]:
        d, out = self.doc, []
        usable = d.cpu.usable_cores
        target = float(d.settings.get("target_spread") or 0.02)
        unstable = [p for p in d.points if p.unstable]
        if unstable:
            out.append(
                f"{len(unstable)} point(s) stayed above the {target * 100:g}% spread target "
                "within the budget (flagged 'unstable'): raise --budget or quiet the machine"
            )
        over = [p for p in d.points if p.oversubscribed]
        # judged by the threads that ran: ATLAS asked for 4 runs 1 and oversubscribes nothing
        if over:
            out.append(
                f"{len(over)} point(s) ran more threads than the {usable} usable cores "
                "(flagged 'oversubscribed'): they compete for cores with each other"
            )
        disturbed = [p for p in d.points if p.disturbed and not p.oversubscribed]
        if disturbed:
            if d.contention_source == SOURCE_LOAD_PROBE:
                how = (
                    f"other processes used over {BUSY_SHARE_PCT:g}% of the usable cores "
                    "(schedstat is missing: judged machine-wide, points of 0.5 s or more only)"
                )
            else:
                threshold = d.contended_wait_pct or CONTENDED_WAIT_PCT
                how = (
                    f"their threads waited for a CPU more than {threshold:g}% of the time, while "
                    "other programs used the CPU to explain it"
                )
            out.append(
                f"{len(disturbed)} point(s) were contended -- {how} (flagged 'contended'): their "
                "times, multi-thread ones most, are pessimistic; rerun them on a quiet machine"
            )
        if d.not_measured:
            out.append(
                f"the {self.budget.seconds:g} s budget ran out: {len(d.not_measured)} point(s) not "
                "measured (status 'partial'): raise --budget, or --resume to measure them"
            )
        return out
