"""The sweep document ("blastune.sweep/1"): what ``blastune sweep`` saves and every reader loads.

``SweepDocument.from_dict`` is the one validation path for a sweep file -- ``--resume``,
``compare``, ``recommend`` and ``plot`` all read through it -- so a hand-edited field (``"iqr_s":
"x"``, ``"busy": "no"``) is refused when the file is loaded, in one line naming the field, not
found after minutes of measuring. Field names are the JSON keys; ``to_dict`` writes them in 0.1.0's
order, then the keys added since, then any key this version does not know (kept, so a newer file
survives ``--resume``). A sweep run in this process hands its readers the same models
(``blastune.sweep()`` returns the document); the JSON form is only ever derived from them.

Files written by 0.1.0 load unchanged: every key added since is optional.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields as dc_fields
from typing import Any

from blastune.core.counts import MAX_THREADS
from blastune.documents.base import (
    MAX_SECONDS,
    MIN_CALL_SECONDS,
    DocumentError,
    Fields,
    check_major,
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


def _seen(f: Fields, name: str) -> dict[str, int | None]:
    """``threads_seen``: library file -> the thread count it reported (null: could not ask)."""
    raw = f.dict(name, None)
    sub = Fields(raw, f._at(name), f.source)
    out = {}
    for path in raw:
        out[path] = sub.threads(path, None, lo=0)
    return out


def _flags(f: Fields, name: str) -> dict[str, str]:
    raw = f.dict(name, None)
    sub = Fields(raw, f._at(name), f.source)
    return {k: sub.str(k) for k in raw}


def is_disturbed(contended: bool | None, busy: bool | None) -> bool:
    """The one rule for "disturbed": others took CPU from a point while it was timed. ``contended``
    is the judgement (per-thread run-queue wait, or the machine-wide probe); a 0.1.0 file has none
    and its ``busy`` flag stands in. Every renderer asks this (or ``SweepPoint.disturbed``)."""
    return bool(contended) if contended is not None else bool(busy)


@dataclass
class SweepPoint:
    """One (op, lib, size, dtype, threads) measurement and the figures derived from it.

    Times are seconds per call. ``spread`` is the relative standard error of the median (see
    ``blastune.measure.timing.spread``); None with fewer than 3 samples. ``wait_pct``: run-queue
    wait of the threads doing the work, in percent of the sample time, summed over the threads;
    ``contended`` when it exceeds the document's ``contended_wait_pct``. ``flags``: figure name ->
    why it is beyond a physical bound (efficiency above 100%, ...), so it is not read as a fact.
    """

    op: str
    lib: str
    size: int
    dtype: str
    threads: int
    median_s: float
    impl: str | None = None
    blas_op: bool = True
    isolated: bool = False
    threads_seen: dict[str, int | None] = field(default_factory=dict)
    oversubscribed: bool | None = None
    flops: float | None = None
    flops_nominal: bool | None = None
    memory_bytes: int | None = None
    q1_s: float | None = None
    q3_s: float | None = None
    iqr_s: float | None = None
    min_s: float | None = None
    max_s: float | None = None
    mean_s: float | None = None
    spread: float | None = None
    repeats: int | None = None
    loops: int | None = None
    warmup_s: float | None = None
    elapsed_s: float | None = None
    stop: str | None = None
    unstable: bool | None = None
    samples_s: list[float] = field(default_factory=list)
    other_load_cores: float | None = None
    busy: bool | None = None
    measured: str | None = None
    # derived by blastune.measure.sweep.points.derive (recomputed on every save)
    threads_ran: int | None = None
    gflops: float | None = None
    peak_pct: float | None = None
    speedup: float | None = None
    efficiency: float | None = None
    best: bool | None = None
    # added after 0.1.0
    wait_pct: float | None = None
    contended: bool | None = None
    samples_wait_pct: list[float] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)
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
        num = lambda n: f.number(n, None, lo=0)  # noqa: E731  (counts of FLOPs, ratios: never < 0)
        sec = lambda n: f.seconds(n, None)  # noqa: E731  (times: finite, never < 0)
        flag = lambda n: f.bool(n, None)  # noqa: E731
        p = cls(
            # a matrix order is bounded as sweep's plan bounds it (a C int, as every count here)
            op=f.str("op", choices=OP_NAMES),
            lib=f.str("lib", choices=LIBS),
            size=f.count("size", lo=1, hi=MAX_THREADS),
            dtype=f.str("dtype", choices=DTYPES),
            threads=f.threads("threads"),
            median_s=f.seconds("median_s", lo=MIN_CALL_SECONDS),
            impl=f.str("impl", None),
            blas_op=f.bool("blas_op", True),
            isolated=f.bool("isolated", False),
            threads_seen=_seen(f, "threads_seen"),
            oversubscribed=flag("oversubscribed"),
            flops=num("flops"),
            flops_nominal=flag("flops_nominal"),
            memory_bytes=f.count("memory_bytes", None),
            q1_s=sec("q1_s"),
            q3_s=sec("q3_s"),
            iqr_s=sec("iqr_s"),
            min_s=sec("min_s"),
            max_s=sec("max_s"),
            mean_s=sec("mean_s"),
            spread=num("spread"),
            repeats=f.count("repeats", None),
            loops=f.count("loops", None),
            warmup_s=sec("warmup_s"),
            elapsed_s=sec("elapsed_s"),
            stop=f.str("stop", None),
            unstable=flag("unstable"),
            samples_s=f.numbers("samples_s", None, lo=0, hi=MAX_SECONDS),
            other_load_cores=num("other_load_cores"),
            busy=flag("busy"),
            measured=f.str("measured", None),
            threads_ran=f.threads("threads_ran", None),
            gflops=num("gflops"),
            peak_pct=num("peak_pct"),
            speedup=num("speedup"),
            efficiency=num("efficiency"),
            best=flag("best"),
            wait_pct=num("wait_pct"),
            contended=flag("contended"),
            samples_wait_pct=f.numbers("samples_wait_pct", None, lo=0),
            flags=_flags(f, "flags"),
        )
        f.ordered(_TIME_ORDER, [getattr(p, n) for n in _TIME_ORDER])
        f.ordered(("min_s", "mean_s", "max_s"), (p.min_s, p.mean_s, p.max_s))
        known = {x.name for x in dc_fields(cls)}
        p.extra = {k: v for k, v in f.data.items() if k not in known}
        return p

    def to_dict(self) -> dict:
        out = {x.name: getattr(self, x.name) for x in dc_fields(self) if x.name != "extra"}
        out["threads_seen"] = dict(self.threads_seen)
        out["samples_s"] = list(self.samples_s)
        out["samples_wait_pct"] = list(self.samples_wait_pct)
        out["flags"] = dict(self.flags)
        return {**_ordered(out, POINT_KEYS_0_1_0), **self.extra}


# the order 0.1.0 wrote a point's keys in (readers diff files; keep them stable)
POINT_KEYS_0_1_0 = (
    "op",
    "lib",
    "size",
    "dtype",
    "threads",
    "impl",
    "blas_op",
    "isolated",
    "threads_seen",
    "oversubscribed",
    "flops",
    "flops_nominal",
    "memory_bytes",
    "median_s",
    "q1_s",
    "q3_s",
    "iqr_s",
    "min_s",
    "max_s",
    "mean_s",
    "spread",
    "repeats",
    "loops",
    "warmup_s",
    "elapsed_s",
    "stop",
    "unstable",
    "samples_s",
    "other_load_cores",
    "busy",
    "measured",
    "threads_ran",
    "gflops",
    "peak_pct",
    "speedup",
    "efficiency",
    "best",
)


def _ordered(d: dict, first) -> dict:
    return {**{k: d[k] for k in first if k in d}, **{k: v for k, v in d.items() if k not in first}}


@dataclass
class SweepCpu:
    model: str | None = None
    usable_cores: int | None = None
    simd: str | None = None
    peak_gflops_per_core: float | None = None
    peak_basis: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, f: Fields) -> "SweepCpu":
        c = cls(
            model=f.str("model", None),
            usable_cores=f.threads("usable_cores", None),
            simd=f.str("simd", None),
            peak_gflops_per_core=f.number("peak_gflops_per_core", None, lo=0),
            peak_basis=f.str("peak_basis", None),
        )
        c.extra = {k: v for k, v in f.data.items() if k not in _names(cls)}
        return c

    def to_dict(self) -> dict:
        return {**{n: getattr(self, n) for n in _names(type(self))}, **self.extra}


@dataclass
class SweepGrid:
    """What was asked for: every point of ops x sizes x dtypes x threads (``lib`` calls them)."""

    ops: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)
    dtypes: list[str] = field(default_factory=list)
    lib: str = "numpy"

    @classmethod
    def from_dict(cls, f: Fields) -> "SweepGrid":
        def items(name, check):
            sub = Fields(
                {f"{name}[{i}]": v for i, v in enumerate(f.list(name, None))}, f.where, f.source
            )
            return [check(sub, k) for k in sub.data]

        return cls(
            ops=items("ops", lambda s, k: s.str(k, choices=OP_NAMES)),
            sizes=items("sizes", lambda s, k: s.count(k, lo=1, hi=MAX_THREADS)),
            threads=items("threads", lambda s, k: s.threads(k)),
            dtypes=items("dtypes", lambda s, k: s.str(k, choices=DTYPES)),
            lib=f.str("lib", "numpy", choices=LIBS),
        )

    def to_dict(self) -> dict:
        return {
            "ops": list(self.ops),
            "sizes": list(self.sizes),
            "threads": list(self.threads),
            "dtypes": list(self.dtypes),
            "lib": self.lib,
        }


def _names(cls) -> list[str]:
    return [x.name for x in dc_fields(cls) if x.name != "extra"]


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
    it."""
    raw = f.dict("libraries", None)
    out = {}
    libs = Fields(raw, f._at("libraries"), f.source)
    for lib in raw:
        apis = libs.sub(lib)
        out[lib] = {}
        for api in apis.data:
            if apis.data[api] is None:
                out[lib][api] = None
                continue
            one = apis.sub(api)
            for name in _LIBRARY_TEXT:  # readers join and print these: text or nothing
                one.str(name, None)
            one.threads("num_threads", None, lo=0)
            one.bool("per_thread", None)
            one.bool("threadpoolctl_sees", None)
            _strings(one, "control_vars")
            _strings(one, "notes")
            out[lib][api] = one.data
    return out


@dataclass
class SweepDocument:
    """A whole sweep results file. ``points`` are ``SweepPoint``s; nested facts about the machine
    and libraries (``fingerprint``, ``libraries``, ``settings``) stay plain dicts, checked for
    shape."""

    schema: str = SCHEMA
    blastune_version: str | None = None
    created: str | None = None
    updated: str | None = None
    status: str = "complete"
    fingerprint: dict = field(default_factory=dict)
    cpu: SweepCpu = field(default_factory=SweepCpu)
    python: str | None = None
    libraries: dict = field(default_factory=dict)
    isolation: str | None = None
    settings: dict = field(default_factory=dict)
    grid: SweepGrid = field(default_factory=SweepGrid)
    skipped: list[str] = field(default_factory=list)
    points: list[SweepPoint] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # added after 0.1.0
    resumed: int | None = None
    contention_source: str | None = None  # CONTENTION_SOURCES; None in 0.1.0 files
    contended_wait_pct: float | None = None  # the threshold 'contended' was judged by
    not_measured: list[dict] = field(
        default_factory=list
    )  # points the budget left out (status partial)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data, source: str = "") -> "SweepDocument":
        f = Fields(data, "", str(source))
        schema = f.str("schema", SCHEMA)
        if not schema.startswith("blastune.sweep/"):
            f.fail(f"expected a blastune.sweep document, got {schema!r}", "schema")
        check_major(f, schema, MAJOR)
        fp = check_fingerprint(f.sub("fingerprint", None))
        doc = cls(
            schema=schema,
            blastune_version=f.str("blastune_version", None),
            created=f.str("created", None),
            updated=f.str("updated", None),
            status=f.str("status", "complete", choices=STATUSES),
            fingerprint=fp,
            cpu=SweepCpu.from_dict(f.sub("cpu", None)),
            python=f.str("python", None),
            libraries=_libraries(f),
            isolation=f.str("isolation", None),
            settings=check_settings(f.sub("settings", None)),
            grid=SweepGrid.from_dict(f.sub("grid", None)),
            skipped=_strings(f, "skipped"),
            points=f.each("points", SweepPoint.from_dict),
            warnings=_strings(f, "warnings"),
            resumed=f.count("resumed", None),
            contention_source=f.str("contention_source", None, choices=CONTENTION_SOURCES),
            contended_wait_pct=f.number("contended_wait_pct", None, lo=0),
            not_measured=[c.data for c in _objects(f, "not_measured")],
        )
        if "points" not in f.data:
            f.fail("missing", "points")
        _no_twins(f, doc.points)
        doc.extra = {k: v for k, v in f.data.items() if k not in _names(cls)}
        return doc

    def to_dict(self) -> dict:
        out = {n: getattr(self, n) for n in _names(type(self))}
        out["cpu"] = self.cpu.to_dict()
        out["grid"] = self.grid.to_dict()
        out["points"] = [p.to_dict() for p in self.points]
        if self.resumed is None:
            del out["resumed"]  # 0.1.0 wrote it only on a resumed file
        return {**_ordered(out, DOCUMENT_KEYS_0_1_0), **self.extra}

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

    def point(self, key: tuple) -> SweepPoint | None:
        return next((p for p in self.points if p.key == tuple(key)), None)

    def groups(self) -> dict[tuple, list[SweepPoint]]:
        """(op, lib, size, dtype) -> its points, fewest threads first."""
        out: dict[tuple, list[SweepPoint]] = {}
        for p in self.points:
            out.setdefault((p.op, p.lib, p.size, p.dtype), []).append(p)
        for pts in out.values():
            pts.sort(key=lambda p: p.threads)
        return out


DOCUMENT_KEYS_0_1_0 = (
    "schema",
    "blastune_version",
    "created",
    "updated",
    "status",
    "fingerprint",
    "cpu",
    "python",
    "libraries",
    "isolation",
    "settings",
    "grid",
    "skipped",
    "points",
    "warnings",
    "resumed",
)


def _no_twins(f: Fields, points: list[SweepPoint]) -> None:
    """Two points with one key would be one measurement told twice: readers would pick either."""
    first: dict[tuple, int] = {}
    for i, p in enumerate(points):
        j = first.setdefault(p.key, i)
        if j != i:
            f.fail(f"the same point ({', '.join(map(str, p.key))}) as points[{j}]", f"points[{i}]")


def _strings(f: Fields, name: str) -> list[str]:
    items = f.list(name, None)
    sub = Fields({f"{name}[{i}]": v for i, v in enumerate(items)}, f.where, f.source)
    return [sub.str(k) for k in sub.data]


def _objects(f: Fields, name: str) -> list[Fields]:
    return f.each(name, lambda x: x, None)


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
