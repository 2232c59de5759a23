"""OpenBLAS, including pip's renamed scipy-openblas builds and Debian's libblas.so.3 shims."""

from __future__ import annotations

import ctypes
import re

from blastune.core.counts import first_positive_int
from blastune.libraries.base import (
    ENV,
    FIXED,
    Advice,
    Control,
    Family,
    Seat,
    affixed,
    function,
    handle,
    runtime_control,
)

_LAYERS = {0: "none", 1: "pthreads", 2: "openmp"}

# The OpenMP build follows OpenMP's ICV only. Seen from another process, only the path tells the
# build: Debian's openblas-openmp/ directory, Fedora's libopenblaso.
_OPENMP_PATH = re.compile(r"openblas-openmp/|libopenblaso[.-]")
_OPENMP_VARS = ("OMP_NUM_THREADS",)


def _sym(lib, base, restype=ctypes.c_int, argtypes=()):
    """``function`` under whichever spelling (``affixed``) this build exports."""
    return next(
        (f for f in (function(lib, n, restype, argtypes) for n in affixed((base,))) if f), None
    )


class OpenBLAS(Family):
    name = "openblas"
    api = "blas+lapack"
    marker_symbols = affixed(("openblas_get_config",))
    ps_pattern = r"lib(scipy_)?openblas[^/]*\.so|/openblas[^/]*/lib(c?blas|lapack)[^/]*\.so"
    thread_vars = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
    key_vars = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    other_vars = ("OPENBLAS_VERBOSE", "OPENBLAS_MAIN_FREE")
    # blas_get_cpu_number() caps the count read from the environment at get_num_procs(), the CPUs
    # in the affinity mask at load (measured: OPENBLAS_NUM_THREADS=4 on 2 CPUs runs 2 threads,
    # under taskset -c 0 runs 1; Debian 0.3.21 pthreads and pip's scipy-openblas 0.3.30).
    caps_at_cpus = True
    display_name = "OpenBLAS"
    measured_gflops = 44.0
    doctor_check = "openblas-openmp-env"

    @classmethod
    def planned_threads(cls, environ, seat: Seat, paths=()):
        if not any(_OPENMP_PATH.search(p) for p in paths):
            return super().planned_threads(environ, seat, paths)
        # The OpenMP build sizes its team from OMP_NUM_THREADS, uncapped (OMP_NUM_THREADS=4 on 2
        # CPUs: 4 threads, measured), else libgomp's default of one per CPU in the mask.
        n, var = first_positive_int(environ or {}, _OPENMP_VARS)
        if n:
            return n, f"{cls.name} (OpenMP build): {var}={n}"
        return cls._default(environ, seat)

    @classmethod
    def advise(cls, libs, environ, want, label):
        libs = [lib for lib in libs if lib.threading_layer == "openmp"]
        if not libs:
            return [Advice("ok", "no OpenMP-built OpenBLAS loaded")]
        ob, omp = environ.get("OPENBLAS_NUM_THREADS"), environ.get("OMP_NUM_THREADS")
        lib = libs[0]
        n = lib.num_threads
        runs = "? threads" if not n else f"{n} thread{'s' * (n != 1)}"
        # the count meant by OPENBLAS_NUM_THREADS (a malformed value is env-integer's finding)
        meant_vals = first_positive_int(environ, ("OPENBLAS_NUM_THREADS",))[0]
        meant = meant_vals or want
        omp_n = first_positive_int(environ, _OPENMP_VARS)[0]
        if ob is not None and omp is None:
            return [
                Advice(
                    "warning",
                    f"OPENBLAS_NUM_THREADS={ob} is ignored: {label(lib)} is built with OpenMP "
                    f"and follows OMP_NUM_THREADS (unset), so it runs {runs}",
                    f"export OMP_NUM_THREADS={meant}",
                )
            ]
        if meant_vals and omp is not None and meant_vals != omp_n:
            return [
                Advice(
                    "info",
                    f"{label(lib)} follows OMP_NUM_THREADS={omp}, not OPENBLAS_NUM_THREADS={ob}",
                    f"export OMP_NUM_THREADS={meant} if {meant} was meant",
                )
            ]
        return [
            Advice(
                "ok",
                f"{label(lib)} is OpenMP-built and OMP_NUM_THREADS "
                f"{'is ' + omp if omp else 'is unset (no conflicting OPENBLAS_NUM_THREADS)'}",
            )
        ]

    @classmethod
    def _layer(cls, lib):
        f = _sym(lib, "openblas_get_parallel")
        return _LAYERS.get(f(), "unknown") if f else "unknown"

    @classmethod
    def describe(cls, path):
        lib = handle(path)
        info = cls.library_info(path)
        cfg = _sym(lib, "openblas_get_config", ctypes.c_char_p)
        if cfg:
            words = (cfg() or b"").decode(errors="replace").split()
            if len(words) > 1 and words[0] == "OpenBLAS":
                info.version = words[1]
        core = _sym(lib, "openblas_get_corename", ctypes.c_char_p)
        if core:
            info.architecture = (core() or b"").decode(errors="replace") or None
        info.threading_layer = cls._layer(lib)
        if info.threading_layer == "none":
            info.num_threads, info.threads_source, info.control = 1, "build", FIXED
            info.notes.append("built without threading (USE_THREAD=0): always 1 thread")
        elif not cls.read_runtime_threads(info, path):
            info.control = ENV
        if info.threading_layer == "openmp":
            # The OpenMP build sizes its pool from OpenMP's ICV: OPENBLAS_NUM_THREADS is not read.
            info.control_vars = list(_OPENMP_VARS)
            info.notes.append(
                "OpenMP build: ignores OPENBLAS_NUM_THREADS; limits apply per calling thread"
            )
        else:
            info.control_vars = list(cls.thread_vars)
        return info

    @classmethod
    def control(cls, path):
        lib = handle(path)
        if cls._layer(lib) == "openmp":
            # As threadpoolctl does: the OpenMP ICV is what the OpenMP build obeys
            # (openblas_set_num_threads is broken there before 0.3.34).
            return runtime_control(
                lib, ("omp_get_max_threads", "omp_set_num_threads"), per_thread=True
            )
        get = _sym(lib, "openblas_get_num_threads")
        set_ = _sym(lib, "openblas_set_num_threads", None, [ctypes.c_int])
        return Control(get, set_) if get and set_ else None
