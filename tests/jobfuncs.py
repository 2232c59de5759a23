"""Functions for tests/test_jobs*.py to hand to ``blastune jobs --func tests-dir-module:function``.

Importable by worker processes: the tests put this directory on sys.path (spawned workers inherit it)
or on PYTHONPATH (for the installed ``blastune`` script).
"""
import json
import os

NOT_CALLABLE = 42  # for --func jobfuncs:NOT_CALLABLE


def square(i):
    return i * i


def small_dot(i):
    import numpy as np

    a = np.full((40, 40), 1.0 + i % 3)
    return float((a @ a)[0, 0])


def record(i):
    """Append who ran task i -- pid and the BLAS threads in effect -- to $JOBFUNCS_LOG."""
    import numpy  # noqa: F401  (load the BLAS so its thread count can be read)

    from blastune.control.limits import get_threads

    counts = get_threads("blas")
    line = {"task": i, "pid": os.getpid(), "threads": max(counts.values()) if counts else None}
    with open(os.environ["JOBFUNCS_LOG"], "a") as f:
        f.write(json.dumps(line) + "\n")


def boom(i):
    if i == 3:
        raise ValueError("beam 3 is corrupt")
    return i


def exits(i):
    """A task that ends its process the way scripts do."""
    import sys

    sys.exit(3)


def fails_in_workers(i):
    """Fine in blastune's own process, broken in a worker (e.g. it relies on state the parent set up)."""
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        raise RuntimeError("no database connection in this process")
    return i


def long_error(i):
    raise ValueError("x" * 5000)


def chatty(i):
    """A task that reports progress on stdout, as scripts do."""
    print(f"processing beam {i}", flush=True)
    return i
