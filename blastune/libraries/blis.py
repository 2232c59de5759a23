"""BLIS. Debian's libblas.so.3 build hides every bli_* symbol, so it is known by its path."""

from __future__ import annotations

import ctypes
import math
import os
import re

from blastune.core.counts import first_positive_int
from blastune.libraries.base import ENV, Advice, Family, Seat, function, handle


WAY_VARS = ("BLIS_JC_NT", "BLIS_PC_NT", "BLIS_IC_NT", "BLIS_JR_NT", "BLIS_IR_NT")


def env_threads_blis(environ) -> tuple[int, str | None]:
    """The thread count BLIS takes from the environment when it initialises, and why.

    As BLIS 0.9 does it (and as bench/blis_env_threads.py measured on Debian's pthread and OpenMP
    builds, counting the threads that really run): per-loop ways (BLIS_JC_NT, ...) win when any is
    set and multiply; otherwise BLIS_NUM_THREADS; otherwise OMP_NUM_THREADS -- in the pthreads build
    too; otherwise 1 thread, even in the OpenMP build.
    """
    ways = {}
    for var in WAY_VARS:
        n, _ = first_positive_int(environ, [var])
        if n:
            ways[var] = n
    if ways:
        return math.prod(ways.values()), " x ".join(f"{k}={v}" for k, v in ways.items())
    n, var = first_positive_int(environ, BLIS.thread_vars)
    return (n, f"{var}={n}") if n else (1, None)


class BLIS(Family):
    name = "blis"
    api = "blas"
    marker_symbols = ("bli_info_get_version_str", "bli_thread_get_num_threads")
    path_pattern = r"(^|/)(libblis[^/]*|blis[^/]*/lib[^/]*)$"
    thread_api = ("bli_thread_get_num_threads", "bli_thread_set_num_threads")
    thread_ctype = ctypes.c_long  # BLIS counts are dim_t
    ps_pattern = r"libblis[^/]*\.so|/blis[^/]*/lib(c?blas)[^/]*\.so"
    thread_vars = ("BLIS_NUM_THREADS", "OMP_NUM_THREADS")
    integer_vars = WAY_VARS
    # uncapped: BLIS_NUM_THREADS=4 on 2 CPUs, or under taskset -c 0, runs 4 threads (measured)
    default_threads = 1
    threadpoolctl_blind = True  # threadpoolctl cannot see Debian's symbol-hiding libblas.so.3 build
    doctor_check = "blis-default-threads"

    @classmethod
    def planned_threads(cls, environ, seat: Seat, paths=()):
        n, why = env_threads_blis(environ)
        return n, f"{cls.name}: {why}" if why else f"{cls.name}: default 1 thread"

    @classmethod
    def advise(cls, libs, environ, want, label):
        if not libs:
            return [Advice("ok", "BLIS not loaded")]
        lib = libs[0]
        unset = not any(environ.get(v) for v in cls.thread_vars)
        if lib.num_threads == 1 and unset and want > 1:
            return [
                Advice(
                    "warning",
                    f"{label(lib)} runs 1 thread, its default when BLIS_NUM_THREADS and "
                    f"OMP_NUM_THREADS are unset, while {want} would fit each job",
                    f"export BLIS_NUM_THREADS={want}",
                )
            ]
        return [Advice("ok", f"{label(lib)} runs {lib.num_threads} thread(s) as set")]

    @classmethod
    def describe(cls, path):
        lib = handle(path)
        info = cls.library_info(path, control_vars=[*cls.thread_vars, *WAY_VARS])
        ver = function(lib, "bli_info_get_version_str", ctypes.c_char_p)
        info.version = ver().decode() if ver else None
        omp = function(lib, "bli_info_get_enable_openmp")
        pth = function(lib, "bli_info_get_enable_pthreads")
        if omp or pth:
            info.threading_layer = (
                "openmp" if omp and omp() else "pthreads" if pth and pth() else "none"
            )
        else:
            # Symbols hidden: the directory (Debian: blis-openmp / blis-pthread) tells the layer.
            m = re.search(r"blis-(openmp|pthread)", path)
            info.threading_layer = (
                {"openmp": "openmp", "pthread": "pthreads"}.get(m.group(1)) if m else "unknown"
            )
        arch = function(lib, "bli_arch_query_id")
        name = function(lib, "bli_arch_string", ctypes.c_char_p, [ctypes.c_int])
        if arch and name:
            info.architecture = name(arch()).decode()
        if not cls.read_runtime_threads(info, path):
            n, var = env_threads_blis(os.environ)
            info.num_threads, info.threads_source, info.control = n, "env", ENV
            info.notes.append(
                "thread API symbols are hidden in this build: set BLIS_NUM_THREADS before start"
                + (f" (now {var})" if var else " (unset: BLIS runs 1 thread)")
            )
        if info.version is None:
            info.notes.append("version not exported by this build")
        return info
