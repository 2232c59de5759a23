"""OpenMP runtimes: GNU libgomp, Intel libiomp5, LLVM libomp. Two of them in one process is trouble."""
from __future__ import annotations

from blastune.libraries.base import Family, LibraryInfo


class _OpenMP(Family):
    api = "openmp"
    flavour = ""
    thread_api = ("omp_get_max_threads", "omp_set_num_threads")
    per_thread = True

    @classmethod
    def owns(cls, path):
        # Every OpenMP runtime exports omp_*; only the file name tells which one it is.
        return cls.path_pattern is not None and bool(__import__("re").search(cls.path_pattern, path))

    @classmethod
    def describe(cls, path):
        info = LibraryInfo(vendor=cls.name, api=cls.api, filepath=path, threading_layer=cls.flavour,
                           control_vars=["OMP_NUM_THREADS"], per_thread=True,
                           notes=["omp_set_num_threads applies to the calling thread"])
        cls.read_runtime_threads(info, path)
        return info



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
