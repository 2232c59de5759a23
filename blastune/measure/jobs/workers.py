"""What runs inside the worker processes of a process layout (module level, so it pickles).

Each worker dies with the process that started it (``children.die_with_parent``: the kernel's
PR_SET_PDEATHSIG on Linux, a watchdog on the parent elsewhere), ignores the terminal's Ctrl-C (the
parent decides and ends the workers), takes its BLAS limit -- and its CPU set for a pinned layout --
before numpy loads, builds and warms its task, and waits at a barrier until every worker is warm.
"""

from __future__ import annotations

import os

from blastune.errors import BlastuneError
from blastune.measure.workloads import build_task

READY_TIMEOUT = 300.0  # seconds for all workers to start and warm up on a loaded machine

_TASK = None
# why this worker could not build or warm its task (reported, not raised)
_INIT_ERROR: str | None = None
_BARRIER = None  # every worker of the layout: the warm-up waits at it, and each batch's start
_NEXT = None  # the next task index of the running batch, shared by the workers (with its lock)
_WORKERS = 1


class TaskFailed(BlastuneError):
    """A task raised; carries a one-line description across the process boundary."""


def failure(what: str, exc: BaseException) -> str:
    """'task 3 raised ValueError: ...' on one line, short enough to read."""
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{what} raised {type(exc).__name__}" + (f": {text}" if text else "")


# What the user's code raising counts as its failure: sys.exit() in a task must not end blastune
# with its status, nor may a KeyboardInterrupt the task raises itself pass for a Ctrl-C -- where
# tasks run SIGINT is ignored (the parent stops the run), so no signal raised it.
TASK_FAILURES = (Exception, SystemExit, KeyboardInterrupt)


def call(fn, i) -> None:
    try:
        fn(i)
    except TASK_FAILURES as exc:
        raise TaskFailed(failure(f"task {i}", exc)) from None


def pin_self(cpus) -> None:
    """This process (every thread) onto ``cpus``, its thread variables and OpenMP places with it."""
    from blastune.control.pinning import pin_env, set_process_affinity

    os.environ.update(pin_env(cpus))
    set_process_affinity(cpus)


def init_worker(parent_pid, threads, workload, barrier, cpu_sets=None, next_task=None, workers=1):
    """The pool's initializer: see the module docstring."""
    global _TASK, _INIT_ERROR, _BARRIER, _NEXT, _WORKERS
    _BARRIER, _NEXT, _WORKERS = barrier, next_task, workers
    from blastune.measure.children import die_with_parent, ignore_terminal_signals

    die_with_parent(parent_pid)
    ignore_terminal_signals()
    try:
        if cpu_sets is not None:
            pin_self(cpu_sets.get(timeout=READY_TIMEOUT))
        if threads is not None:
            from blastune.control.limits import worker_initializer

            worker_initializer(threads)()
    except (Exception, SystemExit) as exc:
        _INIT_ERROR = (
            failure("limiting a worker process", exc)
            if not isinstance(exc, BlastuneError)
            else str(exc)
        )
    # an initializer that raises breaks the whole pool with a traceback on stderr and no word on the
    # cause: keep the reason and report it from ready() instead
    if _INIT_ERROR is None:
        try:
            _TASK = build_task(workload)
        except BlastuneError as exc:
            _INIT_ERROR = str(exc)
        except TASK_FAILURES as exc:
            _INIT_ERROR = failure("building the task in a worker process", exc)
        else:
            try:
                _TASK(0)  # warm-up: first-touch, BLAS thread start, lazy imports
            except TASK_FAILURES as exc:
                _INIT_ERROR = failure("task 0 (the warm-up in a worker process)", exc)
    # hold every worker until all are warm: none may take two warm-up probes
    barrier.wait(READY_TIMEOUT)


def threads_now() -> int | None:
    """The BLAS threads in effect here: read back from run-time controllable libraries, else what
    the environment or the build fixed (Debian's BLIS, ATLAS); None when no BLAS is loaded."""
    try:
        from blastune.control.limits import get_threads

        counts = get_threads("blas")
        if not counts:
            from blastune.facts.detect import inventory

            counts = {
                lib.filepath: lib.num_threads
                for lib in inventory()
                if lib.api != "openmp" and lib.num_threads
            }
    except Exception:  # reading the count must never stop a measurement
        return None
    return max(counts.values()) if counts else None


def ready(_):
    return os.getpid(), threads_now(), _INIT_ERROR


def run_task(i):
    if _INIT_ERROR is not None:
        raise TaskFailed(_INIT_ERROR)
    call(_TASK, i)
    return None  # results stay in the worker: shipping them back would time pickling, not the work


def _take(tasks: int) -> tuple[int, int]:
    """The next tasks for this worker: half of an even share of what is left (guided
    self-scheduling: large pieces first, small ones at the end, so the workers finish together
    with a few dozen takes per batch rather than one message per chunk)."""
    with _NEXT.get_lock():
        i = _NEXT.value
        take = max(1, (tasks - i) // (2 * _WORKERS))
        _NEXT.value = min(tasks, i + take)
    return i, min(tasks, i + take)


def run_share(tasks: int) -> int:
    """One worker's part of a batch of ``tasks``: wait for every worker (so they start together),
    then take tasks from the shared counter until none is left. Returns how many it ran -- the
    task results stay here. A task that fails ends the batch for every worker (the counter jumps
    to the end)."""
    import threading

    if _INIT_ERROR is not None:
        raise TaskFailed(_INIT_ERROR)
    try:
        _BARRIER.wait(READY_TIMEOUT)
    except threading.BrokenBarrierError:
        raise TaskFailed(
            f"the workers did not all start the batch within {READY_TIMEOUT:.0f} s"
        ) from None
    done = 0
    while True:
        i, stop = _take(tasks)
        if i >= tasks:
            return done
        try:
            for k in range(i, stop):
                call(_TASK, k)
        except BaseException:
            with _NEXT.get_lock():
                _NEXT.value = tasks
            raise
        done += stop - i
