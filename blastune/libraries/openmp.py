"""OpenMP runtimes: GNU libgomp, Intel libiomp5, LLVM libomp. Two of them in one process is trouble."""
from __future__ import annotations

import ctypes

from blastune.libraries.base import RUNTIME, Control, Family, LibraryInfo, function, handle


class _OpenMP(Family):
    api = "openmp"
    flavour = ""

    @classmethod
    def owns(cls, path):
        # Every OpenMP runtime exports omp_*; only the file name tells which one it is.
        return cls.path_pattern is not None and bool(__import__("re").search(cls.path_pattern, path))

    @classmethod
    def describe(cls, path):
        info = LibraryInfo(vendor=cls.name, api=cls.api, filepath=path, threading_layer=cls.flavour,
                           control_vars=["OMP_NUM_THREADS"], per_thread=True,
                           notes=["omp_set_num_threads applies to the calling thread"])
        ctl = cls.control(path)
        if ctl:
            info.num_threads, info.control = ctl.get(), RUNTIME
        return info

    @classmethod
    def control(cls, path):
        lib = handle(path)
        get = function(lib, "omp_get_max_threads")
        set_ = function(lib, "omp_set_num_threads", None, [ctypes.c_int])
        return Control(get, set_, per_thread=True) if get and set_ else None


class GNUOpenMP(_OpenMP):
    name = "libgomp"
    flavour = "gnu"
    path_pattern = r"/libgomp[^/]*\.so"


class IntelOpenMP(_OpenMP):
    name = "libiomp"
    flavour = "intel"
    path_pattern = r"/libiomp\d*[^/]*\.so"


class LLVMOpenMP(_OpenMP):
    name = "libomp"
    flavour = "llvm"
    path_pattern = r"/lib(omp|gomp-llvm)[^/]*\.(so|dylib)"
