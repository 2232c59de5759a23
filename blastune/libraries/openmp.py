"""OpenMP runtimes: GNU libgomp, Intel libiomp5, LLVM libomp. Two of them in one process is
trouble."""

from __future__ import annotations

import re

from blastune.libraries.base import Family


class _OpenMP(Family):
    api = "openmp"
    flavour = ""
    thread_api = ("omp_get_max_threads", "omp_set_num_threads")
    per_thread = True
    # OMP_NUM_THREADS=4 on 2 CPUs runs a team of 4 (measured with libgomp): no cap
    thread_vars = ("OMP_NUM_THREADS",)
    integer_vars = ("OMP_THREAD_LIMIT",)
    list_vars = ("OMP_NUM_THREADS",)  # one count per nesting level
    key_vars = ("OMP_PROC_BIND", "OMP_PLACES", "OMP_DYNAMIC")
    other_vars = ("OMP_THREAD_LIMIT", "OMP_MAX_ACTIVE_LEVELS")

    @classmethod
    def owns(cls, path):
        # Every OpenMP runtime exports omp_*; only the file name tells which one it is.
        return cls.path_pattern is not None and bool(re.search(cls.path_pattern, path))

    @classmethod
    def describe(cls, path):
        info = cls.library_info(
            path,
            threading_layer=cls.flavour,
            control_vars=list(cls.thread_vars),
            per_thread=True,
            notes=["omp_set_num_threads applies to the calling thread"],
        )
        cls.read_runtime_threads(info, path)
        return info


class GNUOpenMP(_OpenMP):
    name = "libgomp"
    flavour = "gnu"
    path_pattern = r"/libgomp[^/]*\.so"
    other_vars = _OpenMP.other_vars + ("GOMP_CPU_AFFINITY",)


class IntelOpenMP(_OpenMP):
    name = "libiomp"
    flavour = "intel"
    path_pattern = r"/libiomp\d*[^/]*\.so"
    other_vars = _OpenMP.other_vars + ("KMP_AFFINITY",)


class LLVMOpenMP(_OpenMP):
    name = "libomp"
    flavour = "llvm"
    path_pattern = r"/lib(omp|gomp-llvm)[^/]*\.(so|dylib)"
    other_vars = _OpenMP.other_vars + ("KMP_AFFINITY",)  # LLVM's runtime descends from Intel's
