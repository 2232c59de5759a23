"""ATLAS: thread count is fixed when ATLAS is built (serial libatlas, or threaded libtatlas)."""

from __future__ import annotations

import re

from blastune.libraries.base import FIXED, Family, Seat, address, handle, version_in_path

_THREADED_PATH = re.compile(r"libtatlas|libpt")


class ATLAS(Family):
    name = "atlas"
    api = "blas+lapack"
    marker_symbols = ("ATL_buildinfo", "ATL_xerbla")
    # symbols only the threaded build has
    threaded_symbols = ("ATL_dptgemm", "ATL_thread_start", "ATL_goparallel")
    ps_pattern = r"lib[st]?atlas[^/]*\.so|/atlas/lib(c?blas|lapack)[^/]*\.so"
    threadpoolctl_blind = True
    display_name = "ATLAS"
    measured_gflops = 10.0
    slow = True

    @classmethod
    def planned_threads(cls, environ, seat: Seat, paths=()):
        # threaded ATLAS (libtatlas) runs the thread count it was built for; we assume one per CPU
        if any(_THREADED_PATH.search(p) for p in paths):
            return (
                seat.cpus,
                f"{cls.name}: threaded build, count fixed at build (assumed {seat.cpus})",
            )
        return 1, f"{cls.name}: serial build, always 1 thread"

    @classmethod
    def describe(cls, path):
        lib = handle(path)
        threaded = any(address(lib, s) for s in cls.threaded_symbols) or bool(
            _THREADED_PATH.search(path)
        )
        info = cls.library_info(
            path,
            version=version_in_path(path),
            threading_layer="pthreads" if threaded else "none",
            num_threads=None if threaded else 1,
            threads_source="build",
            control=FIXED,
        )
        if threaded:
            info.notes.append("threaded ATLAS: thread count fixed when ATLAS was built")
        else:
            info.notes.append(
                "serial ATLAS: always 1 thread (fixed at build); "
                "switch to OpenBLAS, MKL or BLIS for threads"
            )
        return info
