"""Teach threadpoolctl the libraries it cannot see (Debian's BLIS, ATLAS, reference BLAS/LAPACK).

Registered through threadpoolctl's public ``register()``, so ``threadpool_info()`` -- what
scikit-learn and others print -- lists them with their thread counts, threading layer and how the
threads can be controlled. ``set_num_threads`` works where the library has a run-time control
(a BLIS that exports its API under a libblas name) and is a no-op where nothing can change the
count at run time (ATLAS, reference, Debian's symbol-hiding BLIS).
"""

from __future__ import annotations

import os

from threadpoolctl import LibController, register

_registered = False


class _NoSymbols:
    """Stands in for the library handle of a file we decline, so threadpoolctl's symbol check
    fails."""


def _claimed(filepath: str):
    """(family, real path) of ``filepath`` when blastune's controller should list it, else (None,
    path): the families threadpoolctl has no controller for, or cannot see under a libblas.so name
    (``threadpoolctl_blind``)."""
    from blastune.facts.detect import family_of

    real = os.path.realpath(filepath)
    fam = family_of(real, own_only=True)
    return (fam if fam is not None and fam.threadpoolctl_blind else None), real


def _describe(filepath: str):
    """The claimed library's ``LibraryInfo``, or None for a file blastune declines."""
    fam, real = _claimed(filepath)
    return fam.describe(real) if fam else None


def register_with_threadpoolctl() -> bool:
    """Register blastune's controller once; True when threadpoolctl now knows it."""
    global _registered
    if _registered:
        return _registered

    class BlastuneController(LibController):
        user_api = "blas"
        internal_api = "blastune"  # replaced per instance by the real vendor
        # threadpoolctl skips any file whose prefix is exactly "libblas" on Linux (to avoid
        # duplicate rows for OpenBLAS's shims). "libblas." still matches libblas.so.3; duplicates
        # are avoided below by claiming only files that are themselves the implementation.
        filename_prefixes = (
            "libblas.",
            "liblapack.",
            "libatlas",
            "libtatlas",
            "libsatlas",
            "librefblas",
            "libreflapack",
        )
        check_symbols = ("dgemm_", "dgesv_", "ATL_buildinfo")

        # Everything set on ``self`` shows up in threadpool_info() (it is vars(self)), which callers
        # print and dump as JSON: only plain values go there, the family is looked up each time.
        def set_additional_attributes(self):
            info = _describe(self.filepath)
            if info is None:
                # A shim of a library threadpoolctl already lists (Debian's OpenBLAS libblas.so.3,
                # ATLAS's liblapack.so.3) or not a BLAS at all: decline, in a way every
                # threadpoolctl >= 3.1 honours -- its check_symbols test then finds nothing.
                self.dynlib = _NoSymbols()
                return
            self.internal_api = info.vendor
            self.threading_layer = info.threading_layer
            self.architecture = info.architecture
            self.control = info.control
            self.control_vars = list(info.control_vars)

        def get_num_threads(self):
            info = _describe(self.filepath)
            return info.num_threads if info else None

        def set_num_threads(self, num_threads):
            fam, real = _claimed(self.filepath)
            ctl = fam.control(real) if fam else None
            if ctl is not None:
                return ctl.set(num_threads)
            return None  # fixed at build or only settable before start: nothing to do at run time

        def get_version(self):  # threadpoolctl calls it before set_additional_attributes
            info = _describe(self.filepath)
            return info.version if info else None

    register(BlastuneController)
    _registered = True
    return True
