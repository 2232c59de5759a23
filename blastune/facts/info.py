"""``blastune.info()``: every fact ``blastune info`` shows, as one plain, versioned object."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass, field

from blastune import __version__
from blastune.facts.clock import ClockCheck, measure_clock
from blastune.facts.cpu import CpuInfo, cpu_info, with_peak_clock
from blastune.facts.detect import Binding, bindings, inventory
from blastune.facts.environment import current_env
from blastune.facts.topology import Topology, topology_or_none
from blastune.libraries import LibraryInfo

INFO_SCHEMA = "blastune.info/1"


def _package_version(name: str) -> tuple[str | None, str | None]:
    # Only the top-level package: detect.binding() loads the BLAS/LAPACK extension modules itself,
    # without the cost of running scipy.linalg's Python code.
    try:
        mod = __import__(name)
        return mod.__version__, None
    except ImportError as exc:
        return None, f"not importable: {exc}"


@dataclass
class Info:
    schema: str
    blastune_version: str
    python: str
    platform: str
    packages: dict[str, dict]
    bindings: list[Binding]
    loaded: list[LibraryInfo]
    cpu: CpuInfo
    env: dict[str, str | None]
    warnings: list[str] = field(default_factory=list)
    clock: ClockCheck | None = None  # a measured dgemm against the nominal peak (measure=True)
    topology: Topology | None = None  # sockets, NUMA nodes, L3 domains, cores (None: unreadable)

    def to_dict(self):
        # asdict() converts the nested dataclasses; the topology has its own form (cpulists)
        return {**asdict(self), "topology": self.topology.to_dict() if self.topology else None}

    def binding(self, package: str, api: str) -> Binding | None:
        return next((b for b in self.bindings if b.package == package and b.api == api), None)


def thread_pools(loaded: list[LibraryInfo]) -> list[LibraryInfo]:
    """The BLAS libraries with a thread pool of their own: a reference LAPACK beside BLIS, or ATLAS
    serial, runs one thread for good and has nothing to oversubscribe with."""
    return [
        lib
        for lib in loaded
        if lib.api != "openmp" and not (lib.control == "fixed" and lib.num_threads == 1)
    ]


def pool_disagreement(loaded: list[LibraryInfo], label=None) -> str | None:
    """What ``info`` warns and ``doctor``'s blas-copies finding says (both as a warning) when BLAS
    copies run different thread counts -- one limited while another is not, or one whose count is
    unknown -- so a limit set through one copy did not reach the others; None when they agree
    (every pip install of numpy + scipy loads two OpenBLAS copies: that alone is no problem)."""
    pools = thread_pools(loaded)
    if len({lib.num_threads for lib in pools}) < 2:
        return None
    label = label or (lambda lib: f"{lib.vendor} ({lib.filepath})")
    listing = ", ".join(
        f"{label(lib)}: {'?' if lib.num_threads is None else lib.num_threads} "
        f"thread{'s' * (lib.num_threads != 1)}"
        for lib in pools
    )
    return (
        f"{len(pools)} BLAS copies run different thread counts -- {listing}; a limit set through "
        "one copy does not reach the others"
    )


def library_users(path: str, binds: list[Binding]) -> list[str]:
    """Which packages call into the library at ``path`` ('numpy', 'scipy')."""
    return sorted({b.package for b in binds if b.library and b.library.filepath == path})


def library_label(lib: LibraryInfo, binds: list[Binding], short: bool = False) -> str:
    """'openblas (/path/libopenblas.so, called by numpy)': how info and doctor name a library
    (``short``: the file's name without its directory)."""
    users = library_users(lib.filepath, binds)
    path = os.path.basename(lib.filepath) if short else lib.filepath
    return f"{lib.vendor} ({path}{', called by ' + ' and '.join(users) if users else ''})"


def info(measure: bool = False) -> Info:
    """Which BLAS/LAPACK numpy and scipy call, everything BLAS-like loaded, the CPU and the env.

    ``measure``: also time a one-thread dgemm in a child (0.5-1 s) to tell whether the CPU runs
    above the clock its nominal peak assumes (``Info.clock``); when it does, the peak is built on
    the clock the dgemm proves (``cpu.peak_clock_source == "measured"``)."""
    from blastune.facts.tpctl import register_with_threadpoolctl

    register_with_threadpoolctl()
    packages = {}
    for name in ("numpy", "scipy"):
        version, error = _package_version(name)
        packages[name] = {"version": version, "error": error}
    binds = bindings([name for name, p in packages.items() if p["version"]])
    binds += [
        Binding(package=name, api=api, error=p["error"])
        for name, p in packages.items()
        if not p["version"]
        for api in ("blas", "lapack")
    ]
    loaded = inventory()
    warnings = []
    omp = [lib for lib in loaded if lib.api == "openmp"]
    said = pool_disagreement(loaded, lambda lib: library_label(lib, binds))
    if said is not None:
        warnings.append(said)
    seen = {lib.filepath: lib.threadpoolctl_sees for lib in loaded}
    for b in binds:
        if b.library is not None:
            b.library.threadpoolctl_sees = seen.get(b.library.filepath)
    if len({lib.vendor for lib in omp}) > 1:
        warnings.append(
            "more than one OpenMP runtime is loaded: " + ", ".join(lib.filepath for lib in omp)
        )
    cpu = cpu_info()
    clock = measure_clock(cpu) if measure else None
    if clock is not None and clock.above_nominal and clock.clock_at_least_mhz:
        # the dgemm proved a higher clock than any the system states: the peak is built on it
        cpu = with_peak_clock(cpu, clock.clock_at_least_mhz, "measured")
    return Info(
        schema=INFO_SCHEMA,
        blastune_version=__version__,
        python=sys.version.split()[0],
        platform=platform.platform(),
        packages=packages,
        bindings=binds,
        loaded=loaded,
        cpu=cpu,
        env=current_env(),
        warnings=warnings,
        clock=clock,
        topology=topology_or_none(),
    )
