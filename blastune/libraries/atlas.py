"""ATLAS: thread count is fixed when ATLAS is built (serial libatlas, or threaded libtatlas)."""
from __future__ import annotations

import re

from blastune.libraries.base import FIXED, Family, LibraryInfo, address, handle


class ATLAS(Family):
    name = "atlas"
    api = "blas+lapack"
    marker_symbols = ("ATL_buildinfo", "ATL_xerbla")
    # symbols only the threaded build has
    threaded_symbols = ("ATL_dptgemm", "ATL_thread_start", "ATL_goparallel")

    @classmethod
    def describe(cls, path):
        lib = handle(path)
        threaded = any(address(lib, s) for s in cls.threaded_symbols) or bool(re.search(r"libtatlas|libpt", path))
        info = LibraryInfo(vendor=cls.name, api=cls.api, filepath=path,
                           threading_layer="pthreads" if threaded else "none",
                           num_threads=None if threaded else 1, threads_source="build", control=FIXED)
        m = re.search(r"\.so\.(\d+\.\d+\.\d+)", path)
        info.version = m.group(1) if m else None
        if threaded:
            info.notes.append("threaded ATLAS: thread count fixed when ATLAS was built")
        else:
            info.notes.append("serial ATLAS: always 1 thread (fixed at build); "
                              "switch to OpenBLAS, MKL or BLIS for threads")
        return info
