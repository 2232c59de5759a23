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

    from blastune.limits import get_threads

    counts = get_threads("blas")
    line = {"task": i, "pid": os.getpid(), "threads": max(counts.values()) if counts else None}
    with open(os.environ["JOBFUNCS_LOG"], "a") as f:
        f.write(json.dumps(line) + "\n")


def boom(i):
    if i == 3:
        raise ValueError("beam 3 is corrupt")
    return i
