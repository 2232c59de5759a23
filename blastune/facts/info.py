"""``blastune.info()``: every fact ``blastune info`` shows, as one plain, versioned object."""
from __future__ import annotations

import platform
import sys
from dataclasses import dataclass, field

from blastune import __version__
from blastune.facts.cpu import CpuInfo, cpu_info
from blastune.facts.detect import Binding, bindings, inventory
from blastune.facts.environment import current_env
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

    def to_dict(self):
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
        }

    def binding(self, package: str, api: str) -> Binding | None:
        return next((b for b in self.bindings if b.package == package and b.api == api), None)


def info() -> Info:
    """Which BLAS/LAPACK numpy and scipy call, everything BLAS-like loaded, the CPU and the env."""
    from blastune.facts.tpctl import register_with_threadpoolctl

    register_with_threadpoolctl()
    packages, present = {}, []
    for name in ("numpy", "scipy"):
        version, error = _package_version(name)
        packages[name] = {"version": version, "error": error}
        if version:
            present.append(name)
    binds = bindings(present)
    for name in ("numpy", "scipy"):
        if name not in present:
            binds += [Binding(package=name, api=api, error=packages[name]["error"]) for api in ("blas", "lapack")]
    loaded = inventory()
    warnings = []
    # Only libraries that can run more than one thread have a pool to oversubscribe with: a
    # reference LAPACK beside BLIS, or ATLAS serial, is no reason to warn.
    pools = [lib.filepath for lib in loaded
             if lib.api != "openmp" and not (lib.control == "fixed" and lib.num_threads == 1)]
    omp = [lib for lib in loaded if lib.api == "openmp"]
    if len(pools) > 1:
        warnings.append(f"{len(pools)} threaded BLAS libraries are loaded, each with its own thread pool "
                        "(limit all of them, e.g. with blastune.limit): " + ", ".join(pools))
    seen = {lib.filepath: lib.threadpoolctl_sees for lib in loaded}
    for b in binds:
        if b.library is not None:
            b.library.threadpoolctl_sees = seen.get(b.library.filepath)
    if len({lib.vendor for lib in omp}) > 1:
        warnings.append("more than one OpenMP runtime is loaded: " + ", ".join(lib.filepath for lib in omp))
    return Info(schema=INFO_SCHEMA, blastune_version=__version__,
                python=sys.version.split()[0], platform=platform.platform(), packages=packages,
                bindings=binds, loaded=loaded, cpu=cpu_info(), env=current_env(), warnings=warnings)
