"""Functions for tests/test_jobs*.py to hand to ``blastune jobs --func tests-dir-module:function``.

Importable by worker processes: the tests put this directory on sys.path (spawned workers inherit it)
or on PYTHONPATH (for the installed ``blastune`` script).
"""

import json
import os

NOT_CALLABLE = 42  # for --func jobfuncs:NOT_CALLABLE


def square(i):
    return i * i


def naps(i):
    """0.1 s of sleep: a batch that lasts at least tasks x 0.1 s / workers on any machine."""
    import time

    time.sleep(0.1)
    return i


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


def _in_worker() -> bool:
    """True in a process layout's worker (its parent is the layout's process, a multiprocessing parent)."""
    import multiprocessing

    return multiprocessing.parent_process() is not None


def crash_exit(i):
    """Ends its process the hard way: no exception, no clean-up (os._exit(9))."""
    os._exit(9)


def crash_segv(i):
    """A segmentation fault in C code (reads address 0 through ctypes)."""
    import ctypes

    ctypes.string_at(0)


def crash_exit_in_workers(i):
    if _in_worker():
        os._exit(9)
    return i


def crash_segv_in_workers(i):
    if _in_worker():
        crash_segv(i)
    return i


def sleepy_in_workers(i):
    """Quick in the serial baseline and in each worker's warm-up (task 0); in a worker's timed batch it
    marks $JOBFUNCS_MARK (if set) and sleeps a long time: a run to stop with a signal mid-batch, after
    the serial baseline has finished a batch."""
    import time

    if _in_worker() and i > 0:
        mark = os.environ.get("JOBFUNCS_MARK")
        if mark:
            with open(mark, "a") as f:
                f.write(f"{os.getpid()}\n")
        time.sleep(120)
    return sum(range(1000))


def interrupts(i):
    """A task that raises KeyboardInterrupt itself (no signal: a library's or the user's doing)."""
    raise KeyboardInterrupt


def interrupts_in_workers(i):
    if _in_worker():
        raise KeyboardInterrupt
    return i


def _mark_and_linger() -> None:
    import time

    try:  # only the first layout process to end: the baseline's ends at once after it
        os.close(os.open(os.environ["JOBFUNCS_MARK"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    time.sleep(60)


def slow_to_end(i):
    """Its layout process takes long to end once blastune closed it: at exit it creates
    $JOBFUNCS_MARK and sleeps -- a window to signal blastune while it reaps that process."""
    import atexit

    if not getattr(slow_to_end, "registered", False):
        atexit.register(_mark_and_linger)
        slow_to_end.registered = True
    return i
