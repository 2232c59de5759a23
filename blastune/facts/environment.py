"""The environment variables that steer BLAS/OpenMP threads."""
from __future__ import annotations

import os

from blastune.core.counts import check_threads

# Variables that set a thread count; every one gets the same value in exports.
THREAD_VARS = (
    "OMP_NUM_THREADS",          # OpenMP runtimes; OpenMP builds of OpenBLAS and BLIS
    "OPENBLAS_NUM_THREADS",     # OpenBLAS (pthreads builds; the OpenMP build ignores it)
    "GOTO_NUM_THREADS",         # GotoBLAS heritage, still read by OpenBLAS
    "MKL_NUM_THREADS",          # Intel MKL
    "BLIS_NUM_THREADS",         # BLIS
    "VECLIB_MAXIMUM_THREADS",   # Apple Accelerate
    "NUMEXPR_NUM_THREADS",      # numexpr
)

# Everything info/doctor report: the thread counts above plus what changes layers and kernels.
ALL_VARS = THREAD_VARS + (
    "NUMEXPR_MAX_THREADS",
    "MKL_THREADING_LAYER",
    "MKL_INTERFACE_LAYER",
    "MKL_DYNAMIC",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "OMP_PROC_BIND",
    "OMP_PLACES",
    "OMP_DYNAMIC",
    "OMP_THREAD_LIMIT",
    "OMP_MAX_ACTIVE_LEVELS",
    "KMP_AFFINITY",
    "GOMP_CPU_AFFINITY",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_VERBOSE",
    "OPENBLAS_MAIN_FREE",
    "BLIS_JC_NT", "BLIS_IC_NT", "BLIS_JR_NT", "BLIS_IR_NT",
    "FLEXIBLAS",
    "FLEXIBLAS_NUM_THREADS",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
)

# Variables whose value must be a positive integer when set.
INTEGER_VARS = THREAD_VARS + ("NUMEXPR_MAX_THREADS", "OMP_THREAD_LIMIT", "FLEXIBLAS_NUM_THREADS",
                              "BLIS_JC_NT", "BLIS_IC_NT", "BLIS_JR_NT", "BLIS_IR_NT")


def current_env(environ=None) -> dict[str, str | None]:
    """Every relevant variable with its value, None when unset."""
    environ = os.environ if environ is None else environ
    return {name: environ.get(name) for name in ALL_VARS}


def thread_env(threads: int) -> dict[str, str]:
    """The variables to set so every BLAS/OpenMP runtime starts with ``threads`` threads."""
    check_threads(threads)
    return {name: str(threads) for name in THREAD_VARS}
