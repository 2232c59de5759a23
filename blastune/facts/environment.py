"""The environment variables that steer BLAS/OpenMP threads, derived from the vendor registry.

Each variable is named once, by the family that reads it (``blastune/libraries/<family>.py``); this
module only gathers them. The lists are computed on each call, so a family registered at run time
(``blastune.libraries.register_family``) is exported, checked and shown like the built-in ones.
``THREAD_VARS``, ``ALL_VARS`` and ``INTEGER_VARS`` are those lists as of the moment they are read.
"""

from __future__ import annotations

import os

from blastune.core.counts import check_threads, first_positive_int
from blastune.libraries import families

# Not BLAS families, but thread pools of their own that numpy users meet: numexpr.
OTHER_THREAD_VARS = ("NUMEXPR_NUM_THREADS",)
OTHER_INTEGER_VARS = ("NUMEXPR_MAX_THREADS",)
# The loader's variables decide which library is loaded at all.
LOADER_VARS = ("LD_PRELOAD", "LD_LIBRARY_PATH")


def _union(lists) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for names in lists for v in names))


def thread_vars() -> tuple[str, ...]:
    """Variables that set a thread count; every one gets the same value in exports."""
    return _union([f.thread_vars for f in families()] + [OTHER_THREAD_VARS])


def integer_vars() -> tuple[str, ...]:
    """Variables whose value must be a positive integer when set."""
    return _union([thread_vars(), OTHER_INTEGER_VARS] + [f.integer_vars for f in families()])


def list_vars() -> tuple[str, ...]:
    """Integer variables that may hold a comma list (OpenMP's nesting levels)."""
    return _union(f.list_vars for f in families())


def strict_vars() -> tuple[str, ...]:
    """Integer variables whose library refuses blanks around the number."""
    return _union(f.strict_vars for f in families())


def shown_vars() -> tuple[str, ...]:
    """What ``info`` always shows, set or not: thread counts and what changes layers or kernels."""
    return _union([thread_vars(), OTHER_INTEGER_VARS] + [f.key_vars for f in families()])


def all_vars() -> tuple[str, ...]:
    """Everything info and doctor report: what every family reads, then the loader's variables."""
    return _union([shown_vars()] + [f.reads() for f in families()] + [LOADER_VARS])


def __getattr__(name):
    lists = {"THREAD_VARS": thread_vars, "ALL_VARS": all_vars, "INTEGER_VARS": integer_vars}
    if name in lists:
        return lists[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def requested_threads(environ=None) -> tuple[int | None, str | None]:
    """The thread count the environment asks of a BLAS nobody has named, and the variable that asks.

    A variable only one family reads (OpenBLAS's own) speaks for that family and outranks one many
    families share (OpenMP's), as each library's own precedence has it.
    """
    environ = os.environ if environ is None else environ
    names = thread_vars()
    readers = {v: sum(v in f.thread_vars for f in families()) for v in names}
    return first_positive_int(environ, sorted(names, key=lambda v: readers[v] > 1))


def current_env(environ=None) -> dict[str, str | None]:
    """Every relevant variable with its value, None when unset."""
    environ = os.environ if environ is None else environ
    return {name: environ.get(name) for name in all_vars()}


def thread_env(threads: int) -> dict[str, str]:
    """The variables to set so every BLAS/OpenMP runtime starts with ``threads`` threads."""
    check_threads(threads)
    return {name: str(threads) for name in thread_vars()}
