"""The ``blastune.info/1`` document (``blastune info --json``, ``blastune.info().to_dict()``), typed.

``InfoDocument.from_dict`` reads a saved one (0.1.0 files included) through ``Fields``: anything
malformed is one line naming the field. ``to_dict`` gives back the same keys, so a document read and
written again keeps everything it had (fields a later version adds are kept as they came, in
``extra``). The live objects are ``blastune.facts.info.Info`` and friends; this module is the
document's reader and stands below them (it imports nothing from facts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blastune.documents.base import Fields

SCHEMA = "blastune.info/1"
KIND = "info"


def _extra(f: Fields, known) -> dict:
    return {k: v for k, v in f.data.items() if k not in known}


@dataclass
class LibraryDoc:
    """One loaded library (``LibraryInfo.to_dict``)."""

    vendor: str
    api: str
    filepath: str
    version: str | None = None
    threading_layer: str | None = None
    architecture: str | None = None
    num_threads: int | None = None
    threads_source: str | None = None
    control: str | None = None
    control_vars: list[str] = field(default_factory=list)
    per_thread: bool = False
    notes: list[str] = field(default_factory=list)
    threadpoolctl_sees: bool | None = None
    extra: dict = field(default_factory=dict)

    KEYS = (
        "vendor",
        "api",
        "filepath",
        "version",
        "threading_layer",
        "architecture",
        "num_threads",
        "threads_source",
        "control",
        "control_vars",
        "per_thread",
        "notes",
        "threadpoolctl_sees",
    )

    @classmethod
    def from_fields(cls, f: Fields) -> "LibraryDoc":
        return cls(
            vendor=f.str("vendor"),
            api=f.str("api"),
            filepath=f.str("filepath"),
            version=f.str("version", None),
            threading_layer=f.str("threading_layer", None),
            architecture=f.str("architecture", None),
            num_threads=f.count("num_threads", None),
            threads_source=f.str("threads_source", None),
            control=f.str("control", None),
            control_vars=[str(v) for v in f.list("control_vars", [])],
            per_thread=bool(f.bool("per_thread", False)),
            notes=[str(n) for n in f.list("notes", [])],
            threadpoolctl_sees=f.bool("threadpoolctl_sees", None),
            extra=_extra(f, cls.KEYS),
        )

    def to_dict(self) -> dict:
        return {**{k: getattr(self, k) for k in self.KEYS}, **self.extra}


@dataclass
class BindingDoc:
    """What one (package, api) pair calls."""

    package: str
    api: str
    symbol: str | None
    serving_file: str | None
    library: LibraryDoc | None
    error: str | None
    extra: dict = field(default_factory=dict)

    KEYS = ("package", "api", "symbol", "serving_file", "library", "error")

    @classmethod
    def from_fields(cls, f: Fields) -> "BindingDoc":
        lib = LibraryDoc.from_fields(f.sub("library")) if f.has("library") else None
        return cls(
            package=f.str("package"),
            api=f.str("api"),
            symbol=f.str("symbol", None),
            serving_file=f.str("serving_file", None),
            library=lib,
            error=f.str("error", None),
            extra=_extra(f, cls.KEYS),
        )

    def to_dict(self) -> dict:
        return {
            "package": self.package,
            "api": self.api,
            "symbol": self.symbol,
            "serving_file": self.serving_file,
            "library": self.library.to_dict() if self.library else None,
            "error": self.error,
            **self.extra,
        }


@dataclass
class CpuDoc:
    """The CPU facts: cores, affinity, quota, SIMD and the nominal peak."""

    model: str
    logical_cores: int
    physical_cores: int
    affinity: list[int]
    usable_cores: int
    usable_basis: str
    simd: str
    clock_mhz: float | None
    peak_gflops_per_core: float | None
    peak_gflops_total: float | None
    peak_basis: str
    data: dict  # every field as it came (cgroup, flags_checked, ...), for to_dict

    @classmethod
    def from_fields(cls, f: Fields) -> "CpuDoc":
        f.sub("cgroup")  # an object, checked
        aff = f.list("affinity")
        return cls(
            model=f.str("model"),
            logical_cores=f.count("logical_cores", lo=1),
            physical_cores=f.count("physical_cores", lo=1),
            affinity=[
                Fields({"cpu": c}, f"{f.where}.affinity", f.source).count("cpu") for c in aff
            ],
            usable_cores=f.count("usable_cores", lo=1),
            usable_basis=f.str("usable_basis"),
            simd=f.str("simd"),
            clock_mhz=f.number("clock_mhz", None, lo=0),
            peak_gflops_per_core=f.number("peak_gflops_per_core", None, lo=0),
            peak_gflops_total=f.number("peak_gflops_total", None, lo=0),
            peak_basis=f.str("peak_basis"),
            data=dict(f.data),
        )

    def to_dict(self) -> dict:
        return dict(self.data)


@dataclass
class InfoDocument:
    schema: str
    blastune_version: str
    python: str
    platform: str
    packages: dict[str, dict]
    bindings: list[BindingDoc]
    loaded: list[LibraryDoc]
    cpu: CpuDoc
    env: dict[str, str | None]
    warnings: list[str]
    extra: dict = field(default_factory=dict)  # keys a later version added (clock, topology, ...)

    KEYS = (
        "schema",
        "blastune_version",
        "python",
        "platform",
        "packages",
        "bindings",
        "loaded",
        "cpu",
        "env",
        "warnings",
    )

    @classmethod
    def from_dict(cls, data, source: str = "") -> "InfoDocument":
        f = Fields(data, "", source)
        schema = f.str("schema")
        if schema.split("/")[0] != SCHEMA.split("/")[0]:
            f.fail(f"expected a {SCHEMA} document, got {schema!r}", "schema")
        packages = f.dict("packages")
        for name in packages:
            p = f.sub("packages").sub(name)
            p.str("version", None), p.str("error", None)
        env = f.dict("env")
        for name in env:
            f.sub("env").str(name, None)
        return cls(
            schema=schema,
            blastune_version=f.str("blastune_version"),
            python=f.str("python"),
            platform=f.str("platform"),
            packages=packages,
            bindings=f.each("bindings", BindingDoc.from_fields),
            loaded=f.each("loaded", LibraryDoc.from_fields),
            cpu=CpuDoc.from_fields(f.sub("cpu")),
            env=env,
            warnings=[str(w) for w in f.list("warnings", [])],
            extra=_extra(f, cls.KEYS),
        )

    def to_dict(self) -> dict:
        return {
            "schema": self.schema,
            "blastune_version": self.blastune_version,
            "python": self.python,
            "platform": self.platform,
            "packages": self.packages,
            "bindings": [b.to_dict() for b in self.bindings],
            "loaded": [lib.to_dict() for lib in self.loaded],
            "cpu": self.cpu.to_dict(),
            "env": self.env,
            "warnings": self.warnings,
            **self.extra,
        }
