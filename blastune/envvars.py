"""The environment variables that steer BLAS/OpenMP threads, and exports for job scripts.

Each shell gets one small renderer; ``render_exports`` picks it from ``SHELLS``.
"""
from __future__ import annotations

import json
import operator
import os
import re
import shlex

from blastune.errors import BlastuneError

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


_UINT = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also takes '٣' or '³', which no C library reads


def positive_ints(value: str | None) -> list[int] | None:
    """'4' -> [4]; '4,2' -> [4, 2] (OMP_NUM_THREADS's nesting list); blanks around items are fine.

    None when unset or when any item is not a positive decimal integer.
    """
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    if not all(_UINT.fullmatch(p) and int(p) > 0 for p in parts):
        return None
    return [int(p) for p in parts]


def first_positive_int(environ, names) -> tuple[int | None, str | None]:
    """The first of ``names`` set to a positive integer (or a list starting with one), and its name."""
    for name in names:
        vals = positive_ints((environ or {}).get(name))
        if vals:
            return vals[0], name
    return None, None


def current_env(environ=None) -> dict[str, str | None]:
    """Every relevant variable with its value, None when unset."""
    environ = os.environ if environ is None else environ
    return {name: environ.get(name) for name in ALL_VARS}


def thread_env(threads: int) -> dict[str, str]:
    """The variables to set so every BLAS/OpenMP runtime starts with ``threads`` threads."""
    check_threads(threads)
    return {name: str(threads) for name in THREAD_VARS}


# The largest count a C int holds: every BLAS/OpenMP thread API takes one, and a bigger Python int
# would be silently truncated on the way in (2**32 arrives as 0).
MAX_THREADS = 2**31 - 1


def whole_number(value) -> int | None:
    """``value`` as an int when it is a whole number -- an int or a numpy integer, not a bool -- else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_threads(threads, what: str = "thread count") -> int:
    n = whole_number(threads)
    if n is None or not 1 <= n <= MAX_THREADS:
        raise BlastuneError(f"invalid {what} {threads!r}: must be a whole number >= 1 (at most {MAX_THREADS})")
    return n


def _posix(env):
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())


def _fish(env):
    return "\n".join(f"set -gx {k} {shlex.quote(v)};" for k, v in env.items())


def _csh(env):
    return "\n".join(f"setenv {k} {shlex.quote(v)};" for k, v in env.items())


def _powershell(env):
    return "\n".join(f"$env:{k} = '{v}'" for k, v in env.items())


def _cmd(env):
    return "\n".join(f"set {k}={v}" for k, v in env.items())


def _dotenv(env):
    return "\n".join(f"{k}={v}" for k, v in env.items())


def _docker(env):
    return " ".join(f"-e {k}={shlex.quote(v)}" for k, v in env.items())


def _json(env):
    return json.dumps(env, indent=2)


def slurm_header(threads: int) -> str:
    return f"#SBATCH --cpus-per-task={threads}"


def _slurm(env):
    # Inside a Slurm job the allocation, not the number we were given, is the truth:
    # every variable follows SLURM_CPUS_PER_TASK, falling back to our number outside Slurm.
    n = next(iter(env.values()))
    lines = [slurm_header(int(n)),
             f'BLASTUNE_THREADS="${{SLURM_CPUS_PER_TASK:-{n}}}"']
    lines += [f'export {k}="$BLASTUNE_THREADS"' for k in env]
    return "\n".join(lines)


SHELLS = {
    "bash": _posix, "zsh": _posix, "sh": _posix,
    "fish": _fish,
    "csh": _csh, "tcsh": _csh,
    "powershell": _powershell, "pwsh": _powershell,
    "cmd": _cmd,
    "dotenv": _dotenv,
    "docker": _docker,
    "slurm": _slurm,
    "json": _json,
}


def render_exports(env: dict[str, str], shell: str = "bash") -> str:
    try:
        renderer = SHELLS[shell]
    except KeyError:
        raise BlastuneError(f"unknown shell {shell!r}: choose one of {', '.join(SHELLS)}") from None
    return renderer(env)
