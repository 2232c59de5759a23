"""``blastune.jobs()``: run one batch of independent tasks under several layouts, measure each.

A layout is an executor (serial, thread, process), a number of workers W and a BLAS thread count T
per worker (None = whatever the library picks by itself: the "naive" layout most users run first).
Every layout runs in a process of its own (``layout_process.py``): started once, limited, warmed up
(inputs built, one task run, all workers checked in), and only then timed, batch by batch. Per batch
the wall time, the CPU time and the run-queue wait of every thread involved are read, so
oversubscription shows as CPU burnt without work, and a batch disturbed by other programs is
flagged (``analysis.py``). ``session.py`` runs the plan; this module is the public entry point.
"""

from __future__ import annotations

import warnings as _warnings

from blastune.core.counts import check_count
from blastune.documents.jobs import SCHEMA, JobsResult, Layout, LayoutResult, Workload
from blastune.errors import BlastuneError, NotControllableWarning
from blastune.measure.budget import is_seconds
from blastune.measure.jobs.layouts import (
    EXECUTORS,
    check_memory,
    default_layouts,
    layouts_from_lists,
    parse_layouts,
    powers_up_to,
    with_baseline,
)
from blastune.measure.jobs.session import TARGET_SERIAL_SECONDS, JobsSession
from blastune.measure.signals import JobsInterrupted
from blastune.measure.jobs.workers import TaskFailed

__all__ = [
    "SCHEMA",
    "EXECUTORS",
    "JobsResult",
    "Layout",
    "LayoutResult",
    "Workload",
    "JobsInterrupted",
    "TaskFailed",
    "run_jobs",
    "default_layouts",
    "parse_layouts",
    "layouts_from_lists",
    "with_baseline",
    "check_memory",
    "powers_up_to",
]


def _refuse_bootstrap_call() -> None:
    """blastune.jobs() at the top of a script that a spawned process is re-importing (the user's own
    multiprocessing code started one without ``if __name__ == "__main__":``) would start processes
    from inside that import: multiprocessing then fails with a long RuntimeError about the
    "bootstrapping phase". Say what to do instead, in one line."""
    import multiprocessing.process as mpp

    if getattr(mpp.current_process(), "_inheriting", False):
        raise BlastuneError(
            "blastune.jobs() was called while a new process was importing your script "
            "(multiprocessing's spawn re-runs the main module): put the call under "
            '`if __name__ == "__main__":`'
        )


def run_jobs(
    workload: Workload | str | None = None,
    tasks: int | None = None,
    layouts: list[Layout] | None = None,
    repeats: int = 3,
    progress=None,
    target_seconds: float = TARGET_SERIAL_SECONDS,
    *,
    out=None,
    force: bool = False,
    budget: float | None = None,
    **workload_kw,
) -> JobsResult:
    """Measure ``tasks`` tasks of ``workload`` under each layout (default: ``default_layouts``).

    ``tasks=None`` calibrates the count so one serial batch takes about ``target_seconds``.
    ``out``: save the results file there (refused if it exists, unless ``force=True``); it is
    written once at the end -- or, if a signal stops the run, with the finished layouts and status
    ``interrupted`` (``JobsInterrupted`` is raised, carrying them as ``.result``).
    ``budget``: seconds for the whole run; batches (and layouts) that would not fit are left out
    and the document says which. ``progress(event, data)`` hears "plan" (estimate_s, batches),
    "batch" (done, total, layout, eta_s) and "done". Keyword arguments build the workload (``op=``,
    ``size=``, ``func=``, ...); ``workload`` may also be "python" or "numpy".
    """
    from blastune.facts.cpu import cpu_info
    from blastune.facts.topology import topology_or_none
    from blastune.measure.workloads import make_workload

    _refuse_bootstrap_call()
    # run_jobs(workload="python") reads like the CLI's --workload python
    if isinstance(workload, str):
        workload, workload_kw = None, {**workload_kw, "workload": workload}
    if workload is None:
        workload = make_workload(**workload_kw)
    elif workload_kw:
        raise BlastuneError(f"give a workload or {', '.join(workload_kw)}, not both")
    if tasks is not None:
        tasks = check_count(tasks, "number of tasks")
    repeats = check_count(repeats, "number of repeats", hi=10_000)
    if budget is not None and not is_seconds(budget):
        raise BlastuneError(f"invalid budget {budget!r}: must be a number of seconds above 0")
    cpu = cpu_info()
    cores = cpu.usable_cores
    if layouts is None:
        layouts = default_layouts(workload, cores, topology_or_none())
    session = JobsSession(
        workload,
        tasks,
        list(layouts),
        repeats,
        cores,
        out=out,
        force=force,
        budget_s=None if budget is None else float(budget),
        progress=progress,
        target_seconds=target_seconds,
        logical_cores=cpu.logical_cores,
    )
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore", NotControllableWarning)
        return session.run()
