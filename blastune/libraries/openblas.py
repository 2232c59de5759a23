"""OpenBLAS, including pip's renamed scipy-openblas builds and Debian's libblas.so.3 shims."""
from __future__ import annotations

import ctypes

from blastune.libraries.base import (ENV, FIXED, RUNTIME, Control, Family, LibraryInfo, affixed,
                                     function, handle)

_LAYERS = {0: "none", 1: "pthreads", 2: "openmp"}


def _sym(lib, base):
    for name in affixed((base,)):
        f = function(lib, name)
        if f is not None:
            return f
    return None


class OpenBLAS(Family):
    name = "openblas"
    api = "blas+lapack"
    marker_symbols = affixed(("openblas_get_config",))

    @classmethod
    def _layer(cls, lib):
        f = _sym(lib, "openblas_get_parallel")
        return _LAYERS.get(f(), "unknown") if f else "unknown"

    @classmethod
    def describe(cls, path):
        lib = handle(path)
        info = LibraryInfo(vendor=cls.name, api=cls.api, filepath=path)
        cfg = _sym(lib, "openblas_get_config")
        if cfg:
            cfg.restype = ctypes.c_char_p
            words = (cfg() or b"").decode(errors="replace").split()
            if len(words) > 1 and words[0] == "OpenBLAS":
                info.version = words[1]
        core = _sym(lib, "openblas_get_corename")
        if core:
            core.restype = ctypes.c_char_p
            info.architecture = (core() or b"").decode(errors="replace") or None
        info.threading_layer = cls._layer(lib)
        ctl = cls.control(path)
        if info.threading_layer == "none":
            info.num_threads, info.threads_source, info.control = 1, "build", FIXED
            info.notes.append("built without threading (USE_THREAD=0): always 1 thread")
        elif ctl is not None:
            info.num_threads, info.control = ctl.get(), RUNTIME
            info.per_thread = ctl.per_thread
        else:
            info.control = ENV
        if info.threading_layer == "openmp":
            # The OpenMP build sizes its pool from OpenMP's ICV: OPENBLAS_NUM_THREADS is not read.
            info.control_vars = ["OMP_NUM_THREADS"]
            info.notes.append("OpenMP build: ignores OPENBLAS_NUM_THREADS; limits apply per calling thread")
        else:
            info.control_vars = ["OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"]
        return info

    @classmethod
    def control(cls, path):
        lib = handle(path)
        if cls._layer(lib) == "openmp":
            # As threadpoolctl does: the OpenMP ICV is what the OpenMP build obeys
            # (openblas_set_num_threads is broken there before 0.3.34).
            get, set_ = function(lib, "omp_get_max_threads"), function(lib, "omp_set_num_threads",
                                                                        None, [ctypes.c_int])
            return Control(get, set_, per_thread=True) if get and set_ else None
        get = _sym(lib, "openblas_get_num_threads")
        set_ = _sym(lib, "openblas_set_num_threads")
        if get is None or set_ is None:
            return None
        set_.restype, set_.argtypes = None, [ctypes.c_int]
        return Control(get, set_)
