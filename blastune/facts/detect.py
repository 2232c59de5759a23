"""Which library really serves numpy's and scipy's BLAS/LAPACK calls, and what else is loaded.

The serving library is found the way the dynamic loader finds it: look up the symbol the extension
module calls (``dlsym`` on the module's own handle searches it and its dependencies in load order),
then ask ``dladdr`` which file holds that address. File names lie (every Debian alternative is
called libblas.so.3); the address does not.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import re
import sys
from dataclasses import asdict, dataclass

from blastune.facts.cpu import read_text
from blastune.libraries import BLAS_FAMILIES, OPENMP_FAMILIES, LibraryInfo
from blastune.libraries.base import _HANDLES, address, affixed, file_of_address, handle

# (package, api) -> (candidate extension modules, the symbols they call, most specific first)
CALL_SITES = {
    ("numpy", "blas"): (
        ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"),
        affixed(("cblas_dgemm", "dgemm_")),
    ),
    ("numpy", "lapack"): (("numpy.linalg._umath_linalg",), affixed(("dgesv_", "dgetrf_"))),
    ("scipy", "blas"): (("scipy.linalg._fblas",), affixed(("dgemm_", "cblas_dgemm"))),
    ("scipy", "lapack"): (("scipy.linalg._flapack",), affixed(("dgesv_", "dgetrf_"))),
}


@dataclass
class Binding:
    """One (package, api) pair and the library that answers its calls."""

    package: str
    api: str
    symbol: str | None = None
    serving_file: str | None = None  # the file that holds the symbol's code
    library: LibraryInfo | None = None
    error: str | None = None  # why nothing could be said

    def to_dict(self):
        return asdict(self)


def mapped_files(pid="self") -> list[str] | None:
    """Every file mapped into process ``pid`` (/proc/PID/maps: symlinks resolved), once each, in
    load order; None where that cannot be read (not ours, gone, not Linux)."""
    text = read_text(f"/proc/{pid}/maps")
    if text is None:
        return None
    rows = (line.split(None, 5) for line in text.splitlines())
    return list(dict.fromkeys(parts[5].strip() for parts in rows if len(parts) == 6))


def loaded_paths() -> list[str]:
    """Every shared object mapped into this process, symlinks resolved, in load order."""
    paths = mapped_files()
    if paths is not None:
        return [p for p in paths if p.startswith("/") and ".so" in p]
    # not Linux: threadpoolctl's loader walk works on macOS and Windows too
    from threadpoolctl import ThreadpoolController

    return [os.path.realpath(c.filepath) for c in ThreadpoolController().lib_controllers]


def family_of(path: str, own_only: bool = False):
    """The family a library belongs to. ``own_only``: the file must define the markers itself."""
    for fam in OPENMP_FAMILIES:
        if fam.owns(path):
            return fam
    for fam in BLAS_FAMILIES:
        if fam.ignore_pattern and re.search(fam.ignore_pattern, path):
            continue
        if own_only and fam.marker_symbols:
            if path in fam.marker_files(path) or (
                fam.path_pattern and re.search(fam.path_pattern, path)
            ):
                return fam
            continue
        if fam.owns(path):
            return fam
    return None


def safe_describe(fam, path: str) -> LibraryInfo:
    """``fam.describe(path)``; a library that cannot be queried gets a row that says why, not a
    traceback."""
    try:
        return fam.describe(path)
    except Exception as exc:  # a foreign library's API misbehaving must not take `info` down
        return fam.library_info(
            path,
            threading_layer="unknown",
            threads_source="unknown",
            control="unknown",
            notes=[f"could not be queried: {type(exc).__name__}: {exc}"],
        )


def describe(path: str) -> LibraryInfo:
    fam = family_of(path)
    if fam is None:
        return LibraryInfo(
            vendor="unknown",
            api="blas",
            filepath=path,
            notes=["no vendor marker symbol or known path"],
        )
    impl = fam.implementation_file(path)
    info = safe_describe(fam, impl)
    if impl != path:
        info.notes.append(f"reached through {path}")
    return info


def extension_file(name: str) -> str:
    """The file of extension module ``name``, found without running its parent packages' code.

    ``import scipy.linalg`` runs scipy.linalg's Python code, which imports numpy.f2py, numpy.ma,
    numpy.testing ... (about 150 ms, more than everything else ``blastune info`` does). The file
    alone is all detection needs.
    """
    mod = sys.modules.get(name)
    if mod is not None and getattr(mod, "__file__", None):
        return mod.__file__
    top, *middle, leaf = name.split(".")
    try:
        spec = importlib.util.find_spec(top)  # finds, does not import
    except ValueError:  # a module object without __spec__ in sys.modules
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"No module named {top!r}")
    for base in spec.submodule_search_locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(base, *middle, leaf + suffix)
            if os.path.exists(path):
                return path
    raise ImportError(f"No module named {name!r}")


def load_extension(path: str):
    """dlopen the extension module the way ``import`` does (RTLD_NOW, RTLD_LOCAL, so the same search
    path and the same dependencies are loaded), without calling its Python init function."""
    real = os.path.realpath(path)
    lib = handle(real)
    if lib is None:
        import ctypes

        # an OSError says why it cannot be loaded
        ctypes.CDLL(real, mode=getattr(os, "RTLD_NOW", 0) | getattr(os, "RTLD_LOCAL", 0))
        _HANDLES.pop(real, None)  # handle() remembered "not loaded"
        lib = handle(real)
    return lib


def binding(package: str, api: str) -> Binding:
    modules, symbols = CALL_SITES[(package, api)]
    b = Binding(package=package, api=api)
    path = None
    for name in modules:
        try:
            path = extension_file(name)
            break
        except ImportError as exc:
            b.error = f"{package} not importable: {exc}"
    if path is None:
        return b
    b.error = None
    try:
        lib = load_extension(path)
    except OSError as exc:
        b.error = f"{path} cannot be loaded: {exc}"
        return b
    for sym in symbols:
        addr = address(lib, sym)
        if addr:
            b.symbol, b.serving_file = sym, file_of_address(addr)
            break
    if b.serving_file is None:
        b.error = f"none of {symbols[0]}, ... is reachable from {path}"
        return b
    b.library = describe(b.serving_file)
    if b.library.api == "blas+lapack":  # this binding uses one half of it
        b.library.api = api
    return b


def bindings(packages=("numpy", "scipy")) -> list[Binding]:
    return [binding(p, a) for p in packages for a in ("blas", "lapack")]


def inventory() -> list[LibraryInfo]:
    """Every BLAS-like and OpenMP library loaded now (two OpenBLAS copies show as two rows)."""
    out = []
    for path in loaded_paths():
        fam = family_of(path, own_only=True)
        if fam is not None:
            out.append(safe_describe(fam, path))
    _mark_threadpoolctl(out)
    return out


def _mark_threadpoolctl(libs: list[LibraryInfo]) -> None:
    """Record whether threadpoolctl (what scikit-learn and others use) can see each library."""
    try:
        from threadpoolctl import threadpool_info

        seen = {os.path.realpath(d["filepath"]) for d in threadpool_info()}
    except Exception:  # threadpoolctl failing must not take info down with it
        return
    for lib in libs:
        lib.threadpoolctl_sees = lib.filepath in seen
