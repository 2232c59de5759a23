"""The ``blastune.jobs/1`` document: what ``blastune jobs`` measured, as typed objects.

``run_jobs`` builds these objects and saves ``JobsResult.to_dict()``; ``JobsResult.from_dict`` reads
a saved file back (0.1.0 files included) through ``Fields``, so a malformed one is one line naming
the field. Field names are those of the JSON. Advice (``recommend``, the profile) and plots read
this model, never the raw dict.

Per layout, every timed batch (repeat) has its wall time, CPU time, run-queue wait share and the CPU
other programs used; from them:

* ``contended`` -- a batch was disturbed from *outside*. The rule (docs/jobs.md, "Contention"): over
  a batch, the layout's threads ran R CPUs' worth and waited W (schedstat, summed over the threads
  of the process running the layout and of its workers). They wanted R + W CPUs and could have had
  min(cores, R + W); ``lost_pct`` = 100 x (min(cores, R + W) - R) is what it did not get (for a
  process layout, its workers' threads: the host process is blastune's harness). A layout that fits
  the cores loses exactly its wait; one that oversubscribes by design (``self_oversubscribed``:
  workers x threads > usable cores) waits because of itself, yet still gets every core on a quiet
  machine, so its own wait is not counted against it. Of the loss, at most the CPU other programs
  used meanwhile (``other_cores``, hypervisor steal ``steal_cores`` among it) counts as outside
  disturbance; as a share of the CPU the layout wanted (``wanted_cores``) that is ``outside_pcts``,
  and a batch is contended when it exceeds ``contention.threshold_pct`` (``contention.rule``
  "outside-share"; 0.2.0 judged lost CPU in % of one CPU, and its documents are re-judged by
  today's rule when read for advice). Where schedstat is missing, when other programs used more
  than ``contention.busy_share_pct`` % of the usable cores (/proc/stat; ``contention.source`` says
  which).
  ``wait_pct`` (the raw wait share, self-inflicted included) is kept beside it.
* ``host_cpus``, ``host_wait_pcts`` -- per batch, the CPU seconds and run-queue wait (% of the wall)
  of a process layout's host process: blastune's harness, which starts the batch and collects it
  (None for serial and thread layouts, whose host does the work). ``host_pct``: the median host CPU
  as a share of the CPU the layout wanted (% ).
* ``tasks`` -- per layout, the tasks of each of its batches (None in older documents: the
  document's ``tasks``); a calibrated run gives a layout whose batch would last under the minimum
  more tasks than the serial baseline's (docs/jobs.md).
* ``spread`` -- the relative standard error of the median of ``walls`` (``measure.timing``'s
  definition, the same as ``sweep``); None with fewer than 3 repeats (shown as "—").
* ``beyond_bounds`` -- figures outside what the layout can physically give (a speed-up above the
  workers x threads it used, CPU efficiency above 100%), field -> reason; shown marked, not as
  facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blastune.documents.base import (
    MAX_SECONDS,
    MIN_CALL_SECONDS,
    REQUIRED,
    Fields,
    field_of,
    plain,
    read_model,
    read_schema,
)
from blastune.documents.common import DTYPES, LIBS, OP_NAMES, check_fingerprint

SCHEMA = "blastune.jobs/1"
KIND = "jobs"
MAJOR = 1  # the schema version this code reads
EXECUTORS = ("serial", "thread", "process")
# How 'spread' was computed: 0.1.0 wrote (max - min) / median; now the relative standard error of
# the median over >= 3 repeats, as sweep does.
SPREAD_RANGE = "range"
SPREAD_SE_MEDIAN = "se_median"
LEGACY_UNSTABLE_RANGE = 0.15  # 0.1.0's rule for 'unstable' on a range spread
# Rates a measurement can give: a batch takes at least MIN_CALL_SECONDS, so at most 1e12 batches a
# second of up to 1e12 tasks each (counts beyond any run); a ratio of two times (speed-up) at most
# MAX_SECONDS / MIN_CALL_SECONDS. Beyond them a figure is no measurement, and plots overflow on it.
MAX_RATE = 1e24
MAX_RATIO = MAX_SECONDS / MIN_CALL_SECONDS


@dataclass(frozen=True)
class Layout:
    """An executor (serial, thread, process), W workers, T BLAS threads per worker (None = the
    library's default: the "naive" layout), optionally each worker pinned to its own CPU set."""

    executor: str = field_of("str", choices=EXECUTORS)
    workers: int = field_of("threads")
    threads: int | None = field_of("threads", None, new=REQUIRED)
    pinned: bool = field_of("bool", False)

    @property
    def head(self) -> str:
        """'serial', '2 threads', '2 processes' -- the row names."""
        if self.executor == "serial":
            return "serial"
        plural = "" if self.workers == 1 else ("es" if self.executor == "process" else "s")
        return f"{self.workers} {self.executor}{plural}" + (" pinned" if self.pinned else "")

    @property
    def label(self) -> str:
        blas = (
            "default BLAS threads"
            if self.threads is None
            else f"{self.threads} BLAS thread" + ("s" if self.threads != 1 else "")
        )
        return f"{self.head} x {blas}"

    @property
    def spec(self) -> str:
        """The --layouts spelling, e.g. process:2x1, process:2xdefault, process:4x2+pin."""
        t = "default" if self.threads is None else self.threads
        return f"{self.executor}:{self.workers}x{t}" + ("+pin" if self.pinned else "")

    def to_dict(self) -> dict:
        return {
            "executor": self.executor,
            "workers": self.workers,
            "threads": self.threads,
            "label": self.label,
            "spec": self.spec,
            "pinned": self.pinned,
        }


# what a task may run: how it is described, and its key in the profile
WORKLOAD_KINDS = {
    "op": ("{lib} {name} {size}x{size} {dtype}", "op:{lib}:{name}:{size}:{dtype}"),
    "python": ("pure-Python loop over {size:,} items (holds the GIL)", "python:{size}"),
    "numpy": ("elementwise numpy on {size:,} doubles (releases the GIL)", "numpy:{size}"),
    "func": ("{name}(i)", "func:{name}"),
}


@dataclass(frozen=True)
class Workload:
    """What each task runs: a BLAS op, the built-in python/numpy examples, or the user's
    function."""

    kind: str  # one of WORKLOAD_KINDS
    name: str  # the op name, "python", "numpy", or "package.module:function"
    size: int | None  # matrix order (op), list length (python), array length (numpy); None for func
    uses_blas: bool  # whether BLAS thread counts can matter (decides which layouts to try)
    dtype: str = "float64"  # op only
    lib: str = "numpy"  # op only: numpy or scipy calls

    def describe(self) -> str:
        return WORKLOAD_KINDS[self.kind][0].format(**vars(self))

    @property
    def key(self) -> str:
        """One name per workload for the profile: 'op:numpy:dot:300:float64', 'func:pkg.mod:fn'."""
        return WORKLOAD_KINDS[self.kind][1].format(**vars(self))

    to_dict = plain

    @classmethod
    def from_fields(cls, f: Fields) -> "Workload":
        kind = f.str("kind", choices=tuple(WORKLOAD_KINDS))
        op = kind == "op"  # an op's name, dtype and library are what blastune can run
        return cls(
            kind=kind,
            name=f.str("name", choices=OP_NAMES if op else None),
            size=f.count("size", None, lo=1, hi=2**62),
            uses_blas=f.bool("uses_blas", False),
            dtype=f.str("dtype", "float64", choices=DTYPES if op else None),
            lib=f.str("lib", "numpy", choices=LIBS if op else None),
        )


def _no_subpicosecond(f: Fields, name: str, w: float) -> None:
    """A coarse clock reads 0; a positive reading below a picosecond is no clock's (and the rate
    derived from it overflows): refused."""
    if 0 < w < MIN_CALL_SECONDS:
        f.fail(f"expected 0 or a time >= {MIN_CALL_SECONDS:g} s, got {w!r}", name)


@dataclass
class LayoutResult:
    layout: Layout
    walls: list[float]  # seconds per timed repeat (batch) of the whole batch of tasks
    # CPU seconds per batch (main + workers), None if unreadable
    cpus: list[float | None] = field_of("items", [], of="number", item=None, lo=0)
    # BLAS threads the workers actually had (read back)
    threads_seen: int | None = field_of("threads", None)
    startup_s: float = field_of("seconds", 0.0)  # starting and warming the workers (not timed)
    wall_s: float = field_of("seconds", new=0.0)  # median of walls
    # relative standard error of the median of walls; None: < 3 repeats
    spread: float | None = field_of("number", None, lo=0)
    tasks_per_s: float = field_of("number", new=0.0, lo=0, hi=MAX_RATE)
    speedup: float | None = field_of("number", None, lo=0, hi=MAX_RATIO)  # serial wall / this wall
    cpu_s: float | None = field_of("seconds", None)  # median CPU seconds
    # cpu_s / wall_s: how many cores the layout kept busy
    busy_cores: float | None = field_of("number", None, lo=0)
    # baseline CPU / this CPU: share of the CPU burnt that did work
    cpu_efficiency: float | None = field_of("number", None, lo=0)
    notes: list[str] = field_of("items", [])
    # contention, per batch (parallel to walls) and summarized
    wait_pcts: list[float | None] = field_of(
        "items", [], of="number", item=None, lo=0
    )  # run-queue wait / wall, % (threads summed)
    # CPU its runnable threads wanted and did not get beyond what its own oversubscription
    # explains, % of one CPU (see docs/jobs.md)
    lost_pcts: list[float | None] = field_of("items", [], of="number", item=None, lo=0)
    other_cores: list[float | None] = field_of(
        "items", [], of="number", item=None, lo=0
    )  # CPUs other programs used meanwhile
    # disturbed from outside, per batch
    contended_batches: list[bool] = field_of("items", [], of="bool")
    wait_pct: float | None = field_of("number", None, lo=0)  # median of wait_pcts
    # any batch disturbed from outside: do not take advice from it
    contended: bool = field_of("bool", False)
    # workers x threads > usable cores: it waits because of itself
    self_oversubscribed: bool = field_of("bool", False)
    # the wait its own oversubscription explains: 100 x (W x T - cores)
    expected_wait_pct: float = field_of("number", 0.0, lo=0)
    # spread above the threshold (or, from 0.1.0, range above 15%); None only while reading
    unstable: bool = field_of("bool", None, new=False)
    beyond_bounds: dict[str, str] = field_of("mapping", {})  # field -> why it is not a fact
    # since 0.3 (absent from older documents: None / empty)
    tasks: int | None = field_of("count", None, lo=1)  # tasks per batch; None: the document's
    steal_cores: list[float | None] = field_of(
        "items", [], of="number", item=None, lo=0
    )  # hypervisor steal, CPUs
    host_cpus: list[float | None] = field_of(
        "items", [], of="number", item=None, lo=0
    )  # CPU s of the host (harness)
    host_wait_pcts: list[float | None] = field_of(
        "items", [], of="number", item=None, lo=0
    )  # its wait, % of the wall
    outside_pcts: list[float | None] = field_of(
        "items", [], of="number", item=None, lo=0
    )  # what others explain, % wanted
    # CPUs the layout wanted: workers x threads, <= the cores
    wanted_cores: float | None = field_of("number", None, lo=0)
    host_pct: float | None = field_of("number", None, lo=0)  # median host CPU, % of it wanted

    to_dict = plain

    @classmethod
    def from_fields(cls, f: Fields, spread_kind: str = SPREAD_SE_MEDIAN) -> "LayoutResult":
        walls = f.items("walls", of="number", lo=0, hi=MAX_SECONDS)
        for i, w in enumerate(walls):
            _no_subpicosecond(f, f"walls[{i}]", w)
        if not walls:
            f.fail("expected at least one timed batch, got none", "walls")
        r = read_model(cls, f, walls=walls, layout=read_model(Layout, f.sub("layout")))
        _no_subpicosecond(f, "wall_s", r.wall_s)
        if r.unstable is None:  # 0.1.0: judged the way 0.1.0 did
            legacy = spread_kind == SPREAD_RANGE
            r.unstable = bool(
                legacy
                and r.spread is not None
                and len(r.walls) > 1
                and r.spread > LEGACY_UNSTABLE_RANGE
            )
        return r


@dataclass
class Contention:
    """How contention was measured and judged for this document (the rule's parameters)."""

    # "schedstat" | "load" (/proc/stat only) | None (not measured)
    source: str | None = field_of("str", None, new="schedstat")
    # rule "outside-share": lost CPU others explain, % of the CPU the layout wanted, above which a
    # batch is contended (0.2.0: lost CPU in % of one CPU)
    threshold_pct: float = field_of("number", 5.0, lo=0)
    # 0.2.0 only: others' CPUs that made a batch contended without schedstat (since: busy_share_pct)
    other_cores_threshold: float | None = 0.25
    note: str = field_of("str", "")
    rule: str | None = field_of("str", None)  # "outside-share" since 0.3; None: 0.2.0's rule
    # without schedstat: others above this % of usable cores
    busy_share_pct: float | None = field_of("number", None, lo=0)
    # the rule of the saved flags, when re-judged on reading
    rejudged_from: str | None = field_of("str", None)

    def to_dict(self) -> dict:
        d = plain(self)
        if self.rule is None:  # 0.2.0's layout
            del d["rule"], d["busy_share_pct"]
        if self.rejudged_from is None:
            del d["rejudged_from"]
        return d

    @classmethod
    def from_fields(cls, f: Fields) -> "Contention":
        # a 0.2.0 document (no rule) that left the threshold out was judged by its default
        default = 0.25 if not f.has("rule") else None
        threshold = f.number("other_cores_threshold", default, lo=0)
        return read_model(cls, f, other_cores_threshold=threshold)


@dataclass
class JobsResult:
    workload: Workload
    tasks: int = field_of("count", lo=1)
    repeats: int = field_of("count", lo=1)
    usable_cores: int = field_of("threads")
    # what the BLAS picks when nobody sets a count
    default_threads: int | None = field_of("threads", None, new=REQUIRED)
    results: list[LayoutResult]
    fingerprint: dict
    # CPUs other programs kept busy meanwhile (None: not measurable)
    other_load_cores: float | None = field_of("number", None, lo=0)
    warnings: list[str] = field_of("items", [])
    created: str = field_of("str", "")
    blastune_version: str = field_of("str", "")
    # "complete" | "interrupted" (partial results: finished batches)
    status: str = field_of("str", "complete", choices=("complete", "interrupted"))
    spread_definition: str = SPREAD_SE_MEDIAN
    contention: Contention | None = field(default_factory=Contention)  # None: a 0.1.0 file
    estimate_s: float | None = field_of("seconds", None)  # the time estimate printed before running
    budget_s: float | None = field_of("seconds", None)  # --budget, if any
    elapsed_s: float | None = field_of("seconds", None)  # wall time of the whole run
    # not in the document: where blastune.jobs(save_profile=True) saved the advice, and what it
    # left out (noisy entries, a broken cache)
    profile: str | None = field(default=None, compare=False, repr=False)
    profile_notices: list[str] = field(default_factory=list, compare=False, repr=False)

    @property
    def baseline(self) -> LayoutResult:
        return self.results[0]

    @property
    def best(self) -> LayoutResult:
        return max(self.results, key=lambda r: r.tasks_per_s)

    @property
    def contended(self) -> bool:
        """Any layout disturbed from outside."""
        return any(r.contended for r in self.results)

    def to_dict(self) -> dict:
        if not self.blastune_version:
            from blastune import __version__

            self.blastune_version = __version__
        return {
            "schema": SCHEMA,
            "blastune_version": self.blastune_version,
            "created": self.created,
            "fingerprint": self.fingerprint,
            "workload": self.workload.to_dict(),
            "tasks": self.tasks,
            "repeats": self.repeats,
            "usable_cores": self.usable_cores,
            "default_threads": self.default_threads,
            "other_load_cores": self.other_load_cores,
            "baseline": self.baseline.layout.spec if self.results else None,
            "best": self.best.layout.spec if self.results else None,
            "results": [r.to_dict() for r in self.results],
            "warnings": list(self.warnings),
            "status": self.status,
            "spread_definition": self.spread_definition,
            "contention": self.contention.to_dict() if self.contention is not None else None,
            "estimate_s": self.estimate_s,
            "budget_s": self.budget_s,
            "elapsed_s": self.elapsed_s,
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "") -> "JobsResult":
        f = Fields(data, "", source)
        read_schema(f, KIND, MAJOR)
        spread_kind = f.str(
            "spread_definition", SPREAD_RANGE, choices=(SPREAD_RANGE, SPREAD_SE_MEDIAN)
        )
        results = f.each("results", lambda sub: LayoutResult.from_fields(sub, spread_kind))
        if not results:
            f.fail("expected at least one layout, got none", "results")
        return read_model(
            cls,
            f,
            workload=Workload.from_fields(f.sub("workload")),
            results=results,
            fingerprint=check_fingerprint(f.sub("fingerprint", {})),
            spread_definition=spread_kind,
            contention=Contention.from_fields(f.sub("contention")) if f.has("contention") else None,
        )


def load_jobs(path) -> JobsResult:
    """A saved jobs file as a ``JobsResult``; anything else is one line naming the file (and
    field)."""
    from blastune.documents.load import load_results

    return JobsResult.from_dict(load_results(path, KIND, 1), str(path))
