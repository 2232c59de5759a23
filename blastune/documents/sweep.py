"""The sweep document ("blastune.sweep/1"): what ``blastune sweep`` saves and every reader loads.

``SweepDocument.from_dict`` is the one validation path for a sweep file -- ``--resume``,
``compare``, ``recommend`` and ``plot`` all read through it -- so a hand-edited field (``"iqr_s":
"x"``, ``"busy": "no"``) is refused when the file is loaded, in one line naming the field, not
found after minutes of measuring. Field names are the JSON keys, declared in the order 0.1.0
wrote them (readers diff files: keep it stable), then the keys added since; ``to_dict`` writes them
so, then any key this version does not know (kept, so a newer file survives ``--resume``). A sweep
run in this process hands its readers the same models (``blastune.sweep()`` returns the
document); the JSON form is only ever derived from them.

Files written by 0.1.0 load unchanged: every key added since is optional.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from blastune.core.counts import MAX_THREADS
from blastune.documents.base import (
    MAX_SECONDS,
    MIN_CALL_SECONDS,
    DocumentError,
    Fields,
    field_of,
    plain,
    read_model,
    read_schema,
)
from blastune.documents.common import DTYPES, LIBS, OP_NAMES, check_fingerprint, check_settings

SCHEMA = "blastune.sweep/1"
KIND = "sweep"
MAJOR = 1  # the schema version this code reads: "blastune.sweep/2" is a newer, unknown layout
STATUSES = ("running", "complete", "partial", "interrupted", "failed")
# the five fields that name a point; two points with the same key are the same measurement
KEY_FIELDS = ("op", "lib", "size", "dtype", "threads")
# the contention figure's source: the kernel's per-thread run-queue delay, or (no schedstat) the
# machine-wide CPU time others used (/proc/stat), which cannot see which core they used
CONTENTION_SOURCES = ("schedstat", "load probe")

_BIG = 2**63 - 1
# the figures of a point's timings, in the order they must stand
_TIME_ORDER = ("min_s", "q1_s", "median_s", "q3_s", "max_s")


def is_disturbed(contended: bool | None, busy: bool | None) -> bool:
    """The one rule for "disturbed": others took CPU from a point while it was timed. ``contended``
    is the judgement (per-thread run-queue wait, or the machine-wide probe); a 0.1.0 file has none
    and its ``busy`` flag stands in. Every renderer asks this (or ``SweepPoint.disturbed``)."""
    return bool(contended) if contended is not None else bool(busy)


@dataclass(kw_only=True)
class SweepPoint:
    """One (op, lib, size, dtype, threads) measurement and the figures derived from it.

    Times are seconds per call. ``spread`` is the relative standard error of the median (see
    ``blastune.measure.timing.spread``); None with fewer than 3 samples. ``wait_pct``: run-queue
    wait of the threads doing the work, in percent of the sample time, summed over the threads;
    ``contended`` when it exceeds the document's ``contended_wait_pct``. ``flags``: figure name ->
    why it is beyond a physical bound (efficiency above 100%, ...), so it is not read as a fact.
    Keyword-only: the fields keep 0.1.0's order, the required ``median_s`` among optional ones.
    """

    op: str = field_of("str", choices=OP_NAMES)
    lib: str = field_of("str", choices=LIBS)
    # a matrix order is bounded as sweep's plan bounds it (a C int, as every count here)
    size: int = field_of("count", lo=1, hi=MAX_THREADS)
    dtype: str = field_of("str", choices=DTYPES)
    threads: int = field_of("threads")
    impl: str | None = field_of("str", None)
    blas_op: bool = field_of("bool", True)
    isolated: bool = field_of("bool", False)
    # library file -> the thread count it reported (null: could not ask)
    threads_seen: dict[str, int | None] = field_of("mapping", None, of="threads", item=None, lo=0)
    oversubscribed: bool | None = field_of("bool", None)
    flops: float | None = field_of("number", None, lo=0)  # FLOPs, ratios: never < 0
    flops_nominal: bool | None = field_of("bool", None)
    memory_bytes: int | None = field_of("count", None)
    median_s: float = field_of("seconds", lo=MIN_CALL_SECONDS)
    q1_s: float | None = field_of("seconds", None)  # times: finite, never < 0
    q3_s: float | None = field_of("seconds", None)
    iqr_s: float | None = field_of("seconds", None)
    min_s: float | None = field_of("seconds", None)
    max_s: float | None = field_of("seconds", None)
    mean_s: float | None = field_of("seconds", None)
    spread: float | None = field_of("number", None, lo=0)
    repeats: int | None = field_of("count", None)
    loops: int | None = field_of("count", None)
    warmup_s: float | None = field_of("seconds", None)
    elapsed_s: float | None = field_of("seconds", None)
    stop: str | None = field_of("str", None)
    unstable: bool | None = field_of("bool", None)
    samples_s: list[float] = field_of("items", None, of="number", lo=0, hi=MAX_SECONDS)
    other_load_cores: float | None = field_of("number", None, lo=0)
    busy: bool | None = field_of("bool", None)
    measured: str | None = field_of("str", None)
    # derived by blastune.measure.sweep.points.derive (recomputed on every save)
    threads_ran: int | None = field_of("threads", None)
    gflops: float | None = field_of("number", None, lo=0)
    peak_pct: float | None = field_of("number", None, lo=0)
    speedup: float | None = field_of("number", None, lo=0)
    efficiency: float | None = field_of("number", None, lo=0)
    best: bool | None = field_of("bool", None)
    # added after 0.1.0
    wait_pct: float | None = field_of("number", None, lo=0)
    contended: bool | None = field_of("bool", None)
    samples_wait_pct: list[float] = field_of("items", None, of="number", lo=0)
    flags: dict[str, str] = field_of("mapping", None)
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know

    @property
    def key(self) -> tuple:
        return tuple(getattr(self, k) for k in KEY_FIELDS)

    @property
    def ran_as_asked(self) -> bool:
        """Did the library run the thread count the point asked for (or is that unknown)?"""
        return self.threads_ran is None or self.threads_ran == self.threads

    @property
    def disturbed(self) -> bool:
        """Other programs competed for the CPU while this point was timed (``is_disturbed``). An
        unstable point is not disturbed: its times never settled, and nothing says others did it."""
        return is_disturbed(self.contended, self.busy)

    @property
    def doubtful(self) -> bool:
        """Its time is no clean fact: disturbed, unstable, or more threads than usable cores."""
        return bool(self.disturbed or self.unstable or self.oversubscribed)

    @classmethod
    def from_dict(cls, data, where: str = "point", source: str = "") -> "SweepPoint":
        f = data if isinstance(data, Fields) else Fields(data, where, source)
        p = read_model(cls, f)
        f.ordered(_TIME_ORDER, [getattr(p, n) for n in _TIME_ORDER])
        f.ordered(("min_s", "mean_s", "max_s"), (p.min_s, p.mean_s, p.max_s))
        return p

    to_dict = plain


@dataclass
class SweepCpu:
    model: str | None = field_of("str", None)
    usable_cores: int | None = field_of("threads", None)
    simd: str | None = field_of("str", None)
    peak_gflops_per_core: float | None = field_of("number", None, lo=0)
    peak_basis: str | None = field_of("str", None)
    extra: dict[str, Any] = field(default_factory=dict)

    to_dict = plain


@dataclass
class SweepGrid:
    """What was asked for: every point of ops x sizes x dtypes x threads (``lib`` calls them)."""

    ops: list[str] = field_of("items", None, choices=OP_NAMES)
    sizes: list[int] = field_of("items", None, of="count", lo=1, hi=MAX_THREADS)
    threads: list[int] = field_of("items", None, of="threads")
    dtypes: list[str] = field_of("items", None, choices=DTYPES)
    lib: str = field_of("str", "numpy", choices=LIBS)

    to_dict = plain


# the text fields of a LibraryInfo (facts.detect) a sweep file keeps per library and API
_LIBRARY_TEXT = (
    "vendor",
    "api",
    "filepath",
    "version",
    "threading_layer",
    "architecture",
    "threads_source",
    "control",
)


def _libraries(f: Fields) -> dict[str, dict[str, dict | None]]:
    """``libraries``: lib ("numpy") -> api ("blas") -> the LibraryInfo dict of the file serving
    it (null: none)."""
    return {
        lib: {api: v if v is None else _library(apis.sub(api)) for api, v in apis.data.items()}
        for lib, apis in f.mapping("libraries", None, of="sub").items()
    }


def _library(one: Fields) -> dict:
    for name in _LIBRARY_TEXT:  # readers join and print these: text or nothing
        one.str(name, None)
    one.threads("num_threads", None, lo=0)
    one.bool("per_thread", None)
    one.bool("threadpoolctl_sees", None)
    one.items("control_vars", None)
    one.items("notes", None)
    return one.data


@dataclass
class SweepDocument:
    """A whole sweep results file. ``points`` are ``SweepPoint``s; nested facts about the machine
    and libraries (``fingerprint``, ``libraries``, ``settings``) stay plain dicts, checked for
    shape."""

    schema: str = SCHEMA
    blastune_version: str | None = field_of("str", None)
    created: str | None = field_of("str", None)
    updated: str | None = field_of("str", None)
    status: str = field_of("str", "complete", choices=STATUSES)
    fingerprint: dict = field(default_factory=dict)
    cpu: SweepCpu = field(default_factory=SweepCpu)
    python: str | None = field_of("str", None)
    libraries: dict = field(default_factory=dict)
    isolation: str | None = field_of("str", None)
    settings: dict = field(default_factory=dict)
    grid: SweepGrid = field(default_factory=SweepGrid)
    skipped: list[str] = field_of("items", None)
    points: list[SweepPoint] = field(default_factory=list)
    warnings: list[str] = field_of("items", None)
    # added after 0.1.0
    resumed: int | None = field_of("count", None)
    contention_source: str | None = field_of("str", None, choices=CONTENTION_SOURCES)
    # the threshold 'contended' was judged by
    contended_wait_pct: float | None = field_of("number", None, lo=0)
    # points the budget left out (status partial)
    not_measured: list[dict] = field_of("items", None, of="dict")
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data, source: str = "") -> "SweepDocument":
        f = Fields(data, "", str(source))
        doc = read_model(
            cls,
            f,
            schema=read_schema(f, KIND, MAJOR, SCHEMA),
            fingerprint=check_fingerprint(f.sub("fingerprint", None)),
            cpu=read_model(SweepCpu, f.sub("cpu", None)),
            libraries=_libraries(f),
            settings=check_settings(f.sub("settings", None)),
            grid=read_model(SweepGrid, f.sub("grid", None)),
            points=f.each("points", SweepPoint.from_dict),
        )
        _no_twins(f, doc.points)
        return doc

    def to_dict(self) -> dict:
        out = plain(self)
        if self.resumed is None:
            del out["resumed"]  # 0.1.0 wrote it only on a resumed file
        return out

    @classmethod
    def load(cls, path) -> "SweepDocument":
        """Read and check a sweep file: missing, corrupt, foreign or malformed is one
        BlastuneError."""
        from blastune.documents.load import load_results

        return cls.from_dict(load_results(path, KIND, 1), source=str(path))

    # --- what readers ask of a document -----------------------------------------------------------
    def blas(self, lib: str | None = None) -> dict:
        """The LibraryInfo dict of the BLAS that ``lib`` (default: the grid's) called; {} if
        unknown."""
        return (self.libraries.get(lib or self.grid.lib) or {}).get("blas") or {}

    def groups(self) -> dict[tuple, list[SweepPoint]]:
        """(op, lib, size, dtype) -> its points, fewest threads first."""
        out: dict[tuple, list[SweepPoint]] = {}
        for p in self.points:
            out.setdefault((p.op, p.lib, p.size, p.dtype), []).append(p)
        for pts in out.values():
            pts.sort(key=lambda p: p.threads)
        return out


def _no_twins(f: Fields, points: list[SweepPoint]) -> None:
    """Two points with one key would be one measurement told twice: readers would pick either."""
    first: dict[tuple, int] = {}
    for i, p in enumerate(points):
        j = first.setdefault(p.key, i)
        if j != i:
            f.fail(f"the same point ({', '.join(map(str, p.key))}) as points[{j}]", f"points[{i}]")


__all__ = [
    "SCHEMA",
    "KEY_FIELDS",
    "STATUSES",
    "CONTENTION_SOURCES",
    "SweepPoint",
    "SweepCpu",
    "SweepGrid",
    "SweepDocument",
    "DocumentError",
]
