"""Cap the BLAS threads of every Dask worker at its share of the cores.

``limit_workers(client)`` registers ``BlasThreadsPlugin`` on the scheduler, so every worker that is
running now *and every worker that joins later* runs its ``setup``. The plugin

  1. works out the worker's share of the cores (or takes the explicit ``threads``);
  2. exports all ``blastune.facts.environment.THREAD_VARS`` into the worker's ``os.environ``
     (libraries loaded later and child processes start capped) and calls ``blastune.set_threads``
     for the libraries already loaded -- in the worker's main thread and once in each task thread,
     because OpenMP runtimes keep their count per thread;
  3. records exactly what it changed (``WorkerLimit``); ``teardown`` (worker closes or
     ``client.unregister_worker_plugin("blastune")``) puts back only those values, and only where
     nobody changed them since.

The share (``threads=None``):
    usable cores of the worker process  //  task threads of all workers on the same host
where *usable cores* is ``blastune.facts.cpu.cpu_info().usable_cores`` read inside the worker
(affinity mask and cgroup quota, so a worker in a container or a Slurm cgroup sees its own
allocation), and the host's task threads are the ``nthreads`` of every worker the scheduler knows on
that IP address, this worker included. With ``per_host=False`` the divisor is this worker's own
``nthreads`` only -- right when each worker process has its own cpuset (e.g. one worker per Slurm
job on shared nodes).

Why not leave it to Dask? The nanny exports ``distributed.nanny.pre-spawn-environ``
(every thread variable = 1) before it spawns a worker: a worker that owns 8 cores and runs one
task thread is then starved to one BLAS thread, and a worker started without a nanny
(``--no-nanny``, ``LocalCluster(processes=False)``) gets no limit at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import warnings
from dataclasses import asdict, dataclass, field

from blastune.errors import BlastuneError
from blastune.integrations import missing_extra
from blastune.core.counts import per_job

try:
    import distributed
    from distributed import WorkerPlugin
except ImportError as _exc:  # the optional extra is missing
    raise missing_extra("blastune.integrations.dask", "dask.distributed", "dask", _exc) from None

PLUGIN_NAME = "blastune"
_TASK_THREAD_TIMEOUT = 10.0  # seconds to wait for busy task threads when installed mid-computation


@dataclass
class WorkerLimit:
    """What the plugin decided and changed on one worker."""

    address: str
    host: str
    pid: int
    nthreads: int  # the worker's task threads
    usable_cores: int  # inside the worker process (affinity, cgroup)
    usable_basis: str
    host_task_threads: int | None  # all workers' nthreads on this host (None with per_host=False)
    threads: int  # the BLAS/OpenMP thread count applied
    basis: str  # how ``threads`` was chosen, in words
    env_changed: dict[str, list] = field(default_factory=dict)  # var -> [before, after]
    # library path -> [before, after]
    threads_changed: dict[str, list] = field(default_factory=dict)
    task_threads_set: int = 0  # task threads in which the count was set
    notes: list[str] = field(default_factory=list)

    def to_dict(self):
        return asdict(self)

    def inherit(self, leaving: WorkerLimit, get_threads_now) -> None:
        """Take over what a worker of the same process changed, so the last to leave restores it.

        A value this record changed after ``leaving`` did (its ``before`` is ``leaving``'s
        ``after``) goes back to ``leaving``'s ``before``; a value only ``leaving`` changed, and that
        still holds, is taken as it is.
        """
        taken = 0
        for mine, theirs, now in (
            (self.env_changed, leaving.env_changed, os.environ.get),
            (self.threads_changed, leaving.threads_changed, get_threads_now().get),
        ):
            for key, (before, after) in theirs.items():
                if key in mine:
                    if mine[key][0] == after:
                        mine[key][0] = before
                        taken += 1
                elif now(key) == after:
                    mine[key] = [before, after]
                    taken += 1
        if taken:
            self.notes.append(
                f"took over {taken} change(s) from {leaving.address} (same process), "
                "to put back when the last worker of this process leaves"
            )


class BlasThreadsPlugin(WorkerPlugin):
    """Caps BLAS/OpenMP threads on each worker at its share of the cores, or at ``threads``.

    After ``setup`` the record of what changed is ``worker.plugins["blastune"].record``.
    """

    name = PLUGIN_NAME
    idempotent = False  # registering again replaces it: teardown (restore) then a fresh setup

    def __init__(self, threads: int | None = None, *, per_host: bool = True, api: str = "all"):
        from blastune.control.limits import check_api

        # here, in the client: a bad api must not become tracebacks in the worker logs
        check_api(api)
        if threads is not None:
            from blastune.core.counts import check_threads

            check_threads(threads)
        self.threads = threads
        self.per_host = per_host
        self.api = api
        self.record: WorkerLimit | None = None

    # -- deciding ---------------------------------------------------------------------------------
    async def _host_task_threads(self, worker) -> int | None:
        """Task threads of every worker the scheduler knows on this worker's host (this one
        included)."""
        try:
            ident = await worker.scheduler.identity()
        except Exception:  # an old or unusual scheduler: fall back to this worker alone
            return None
        total, seen_self = 0, False
        for addr, w in ident.get("workers", {}).items():
            if w.get("host") == worker.ip:
                total += int(w.get("nthreads") or 0)
                seen_self |= addr == worker.address
        if not seen_self:
            total += worker.state.nthreads
        return total

    async def _decide(self, worker) -> WorkerLimit:
        from blastune.facts.cpu import cpu_info

        cpu = cpu_info()
        nthreads = worker.state.nthreads
        host_threads = await self._host_task_threads(worker) if self.per_host else None
        notes = []
        if self.threads is not None:
            threads, basis = self.threads, f"explicit threads={self.threads}"
            slots = host_threads or nthreads
            if threads * slots > cpu.usable_cores:
                notes.append(
                    f"{threads} BLAS threads x {slots} task threads on this host = "
                    f"{threads * slots} > {cpu.usable_cores} usable cores: oversubscribed"
                )
        else:
            if host_threads is not None:
                divisor, whose = host_threads, f"the workers on {worker.ip}"
            else:
                unlisted = "scheduler did not list the host's workers"
                why = unlisted if self.per_host else "per_host=False"
                divisor, whose = nthreads, f"this worker ({why})"
            threads = per_job(cpu.usable_cores, divisor)
            basis = (
                f"{cpu.usable_cores} usable cores ({cpu.usable_basis}) // {divisor} task threads "
                f"of {whose}"
            )
        return WorkerLimit(
            address=worker.address,
            host=worker.ip,
            pid=os.getpid(),
            nthreads=nthreads,
            usable_cores=cpu.usable_cores,
            usable_basis=cpu.usable_basis,
            host_task_threads=host_threads,
            threads=threads,
            basis=basis,
            notes=notes,
        )

    # -- applying ---------------------------------------------------------------------------------
    async def setup(self, worker):
        from blastune.facts.environment import thread_env
        from blastune.control.limits import get_threads, set_threads

        rec = await self._decide(worker)
        # Environment first: a library loaded later (scipy's own OpenBLAS, say) reads it at load
        # time.
        for var, value in thread_env(rec.threads).items():
            before = os.environ.get(var)
            if before != value:
                rec.env_changed[var] = [before, value]
                os.environ[var] = value
        before = get_threads(self.api)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            after = set_threads(rec.threads, api=self.api)
        rec.notes += sorted({str(w.message) for w in caught})
        rec.threads_changed = {
            p: [before.get(p), n] for p, n in after.items() if before.get(p) != n
        }
        if not after:
            rec.notes.append(
                f"no BLAS/OpenMP library loaded yet: those loaded later start at {rec.threads} "
                "thread(s) from the environment"
            )
        rec.task_threads_set = await self._set_in_task_threads(worker, rec.threads)
        if rec.task_threads_set < rec.nthreads:
            rec.notes.append(
                f"set in {rec.task_threads_set} of {rec.nthreads} task threads (the others were "
                "busy); a per-thread OpenMP count there changes when limit_workers runs again"
            )
        self.record = rec

    async def _set_in_task_threads(self, worker, threads: int) -> int:
        """Run set_threads once in each task thread (a barrier keeps one thread from taking two
        turns)."""
        executor = getattr(worker, "executors", {}).get("default")
        n = worker.state.nthreads
        if executor is None or not hasattr(executor, "submit") or n < 1:
            return 0
        barrier = threading.Barrier(n)
        futures = [
            asyncio.wrap_future(executor.submit(_set_here, threads, self.api, barrier))
            for _ in range(n)
        ]
        results = await asyncio.gather(*futures, return_exceptions=True)
        return sum(1 for r in results if r is True)

    def teardown(self, worker):
        """Put back what setup changed -- only where the value is still the one we set.

        Workers without a nanny may share one process (``LocalCluster(processes=False)``): one
        environment and one BLAS pool for all of them. Only the first worker's setup changed
        anything; if it leaves while another worker of this process still runs the plugin, the cap
        must stay, so its record passes to that worker and the last one to leave puts things back.
        """
        rec = self.record
        if rec is None:
            return
        self.record = None
        heir = _heir_in_this_process(worker, self)
        if heir is not None:
            from blastune.control.limits import get_threads

            heir.record.inherit(rec, get_threads_now=lambda: get_threads(self.api))
            return
        for var, (before, after) in rec.env_changed.items():
            if os.environ.get(var) != after:
                continue  # someone changed it since: theirs wins
            if before is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = before
        _restore_threads(rec.threads_changed, self.api)


def _heir_in_this_process(worker, leaving: BlasThreadsPlugin) -> BlasThreadsPlugin | None:
    """Another running worker of this process whose blastune plugin has set up, if any."""
    for other in list(getattr(distributed.Worker, "_instances", ())):
        plugin = other.plugins.get(PLUGIN_NAME) if other is not worker else None
        if (
            isinstance(plugin, BlasThreadsPlugin)
            and plugin is not leaving
            and plugin.record is not None
        ):
            return plugin
    return None


def _set_here(threads: int, api: str, barrier: threading.Barrier) -> bool:
    from blastune.control.limits import set_threads

    try:
        barrier.wait(_TASK_THREAD_TIMEOUT)
    except threading.BrokenBarrierError:
        return False  # some task threads are busy; the others still get the count below
    finally:
        # no warnings.catch_warnings() here: it is not thread-safe, and blastune.control.limits
        # reports a library that cannot take the count only once per process (the main thread
        # already did)
        set_threads(threads, api=api)
    return True


def _restore_threads(changed: dict[str, list], api: str) -> None:
    """``changed``: library path -> [before, after]; each goes back only if still at ``after``."""
    from blastune.control.limits import get_threads, set_threads

    now = get_threads(api)
    todo = {p: b for p, (b, a) in changed.items() if b is not None and now.get(p) == a}
    if not todo:
        return
    values = set(todo.values())
    if len(values) == 1 and len(todo) == len(changed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            set_threads(values.pop(), api=api)
        return
    # libraries that started at different counts: restore each one by its path
    from threadpoolctl import ThreadpoolController

    for ctl in ThreadpoolController().lib_controllers:
        path = os.path.realpath(ctl.filepath)
        for p, n in todo.items():
            if os.path.realpath(p) == path:
                ctl.set_num_threads(n)


# -- reporting -------------------------------------------------------------------------------------
@dataclass
class WorkerReport:
    address: str
    host: str
    pid: int
    nthreads: int
    usable_cores: int
    libraries: list[dict]  # vendor, filepath, threads, control -- every BLAS/OpenMP loaded
    env: dict[str, str | None]  # the thread variables as the worker sees them
    limit: dict | None  # the plugin's WorkerLimit, None when not installed

    def to_dict(self):
        return asdict(self)


@dataclass
class ClusterSummary:
    workers: list[WorkerReport]

    def to_dict(self):
        return {"workers": [w.to_dict() for w in self.workers]}

    def rows(self):
        """One row per worker and library, for ``tabulate``."""
        out = []
        for w in self.workers:
            changed = _changed_text(w.limit) if w.limit else "plugin not installed"
            for lib in w.libraries or [{"vendor": "-", "threads": "-"}]:
                out.append(
                    [
                        w.address,
                        w.nthreads,
                        w.usable_cores,
                        lib["vendor"],
                        lib["threads"],
                        w.limit["threads"] if w.limit else "-",
                        changed,
                    ]
                )
        return out

    headers = (
        "worker",
        "task threads",
        "usable cores",
        "library",
        "BLAS threads",
        "cap",
        "changed",
    )

    def __str__(self):
        """The table, then how each cap was chosen and every warning, once per distinct text."""
        from tabulate import tabulate

        if not self.workers:
            return "no workers yet: the plugin runs on each worker as it joins"
        lines = [tabulate(self.rows(), headers=self.headers, disable_numparse=True)]
        said: dict[str, list[str]] = {}
        for w in self.workers:
            if w.limit:
                for text in [f"cap: {w.limit['basis']}", *(f"note: {n}" for n in w.limit["notes"])]:
                    said.setdefault(text, []).append(w.address)
        for text, who in said.items():
            lines.append(
                f"{text} ({'all workers' if len(who) == len(self.workers) else ', '.join(who)})"
            )
        return "\n".join(lines)


def _changed_text(limit: dict) -> str:
    """'7 env vars unset->1; 1 library 2->1' -- the plugin's changes in a table cell."""
    parts = []
    for one, many, changes in (
        ("env var", "env vars", limit["env_changed"]),
        ("library", "libraries", limit["threads_changed"]),
    ):
        pairs = sorted({(str("unset" if b is None else b), str(a)) for b, a in changes.values()})
        if pairs:
            what = one if len(changes) == 1 else many
            parts.append(f"{len(changes)} {what} " + ", ".join(f"{b}->{a}" for b, a in pairs))
    return "; ".join(parts) or "nothing (already at the cap)"


def _report(dask_worker) -> dict:
    """Runs inside a worker (``client.run``): what it runs and what the plugin changed."""
    from blastune.facts.cpu import cpu_info
    from blastune.facts.detect import inventory
    from blastune.facts.environment import THREAD_VARS

    plugin = dask_worker.plugins.get(PLUGIN_NAME)
    rec = getattr(plugin, "record", None)
    libs = [
        {
            "vendor": lib.vendor,
            "filepath": lib.filepath,
            "threads": lib.num_threads,
            "control": lib.control,
        }
        for lib in inventory()
    ]
    return WorkerReport(
        address=dask_worker.address,
        host=dask_worker.ip,
        pid=os.getpid(),
        nthreads=dask_worker.state.nthreads,
        usable_cores=cpu_info().usable_cores,
        libraries=libs,
        env={v: os.environ.get(v) for v in THREAD_VARS},
        limit=rec.to_dict() if rec else None,
    ).to_dict()


def worker_summary(client) -> ClusterSummary:
    """Per worker: the BLAS/OpenMP libraries loaded and their threads, usable cores, what blastune
    changed.

    With an asynchronous client, ``await worker_summary(client)``.
    """
    if getattr(client, "asynchronous", False):
        return _summary_async(client)
    return _summary(client.run(_report))


def limit_workers(
    client, threads: int | None = None, *, per_host: bool = True, api: str = "all"
) -> ClusterSummary:
    """Install ``BlasThreadsPlugin`` on every current and future worker; return ``worker_summary``.

    ``threads=None`` gives each worker its share of the cores (see the module docstring); an int
    caps every worker at that many threads. Calling it again (e.g. after scaling up) re-plans every
    worker. With an asynchronous client (``Client(..., asynchronous=True)``), ``await
    limit_workers(client)``.
    """
    plugin = BlasThreadsPlugin(threads, per_host=per_host, api=api)  # bad input fails here
    if getattr(client, "asynchronous", False):
        return _limit_workers_async(client, plugin)
    with _blastune_on_the_workers():
        client.register_plugin(plugin, name=PLUGIN_NAME)
        return worker_summary(client)


async def _limit_workers_async(client, plugin: BlasThreadsPlugin) -> ClusterSummary:
    with _blastune_on_the_workers():
        await client.register_plugin(plugin, name=PLUGIN_NAME)
        return await worker_summary(client)


@contextlib.contextmanager
def _blastune_on_the_workers():
    """A worker that cannot import blastune fails to unpickle the plugin; dask relays that as a bare
    ``Exception(ModuleNotFoundError(...))``. Say what to do instead."""
    try:
        yield
    except Exception as exc:
        if re.search(r"No module named '?blastune\b", str(exc)):
            raise BlastuneError(
                "blastune is not installed where the Dask workers run: install it in the workers' "
                "environment (pip install blastune, or distributed.diagnostics.plugin.PipInstall)"
            ) from None
        raise


def _summary(results: dict) -> ClusterSummary:
    return ClusterSummary([WorkerReport(**results[a]) for a in sorted(results)])


async def _summary_async(client) -> ClusterSummary:
    return _summary(await client.run(_report))


__all__ = [
    "BlasThreadsPlugin",
    "WorkerLimit",
    "WorkerReport",
    "ClusterSummary",
    "limit_workers",
    "worker_summary",
    "PLUGIN_NAME",
    "distributed",
]
