"""The process that runs one layout, started as

    python -m blastune.measure.jobs.layout_process CMD_FD REPLY_FD PARENT_PID

Every layout -- the serial baseline included -- runs in a host of its own, started by
``layout_handle.py`` with ``subprocess`` (so a user's script is never re-imported, as
multiprocessing's spawn would do), so a task that crashes (``os._exit``, a segfault in C code) takes
down its host, not blastune, which then says so in one line. A serial or thread layout runs in the
host itself; a process layout's worker processes are the host's children. The host sets the layout's
BLAS threads before numpy loads (so libraries that read their count only at start-up get it too),
then, on command, builds and warms the task, calibrates, and times batches.

Per batch it reads, around the timed call: wall time, CPU time and run-queue wait of every thread of
the host and of its workers (``facts.schedstat``), and the CPU other programs used (/proc/stat).

The host dies with blastune (PR_SET_PDEATHSIG = SIGTERM, a parent watchdog elsewhere) and, on
SIGTERM, ends its own workers before it exits, so no worker, resource tracker or semaphore is left.
Ctrl-C and SIGHUP are blastune's to handle: the host ignores them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import warnings

from blastune.errors import BlastuneError, NotControllableWarning
from blastune.measure.jobs.analysis import lost_pct as lost_pct_of
from blastune.measure.jobs.layout_handle import exit_text
from blastune.measure.jobs.workers import READY_TIMEOUT, TaskFailed, call, failure, threads_now

# for the pool to reap every worker after one died (it terminates the rest)
DEAD_WORKER_WAIT_S = 5.0


class Stop(SystemExit):
    """SIGTERM in the host: unwind, ending the workers on the way out."""


# A Stop raised while Python runs a __del__ or a weakref callback cannot unwind: Python prints it as
# "Exception ignored in ..." and carries on. It is remembered here, kept off stderr, and raised at
# the host's next step instead.
_PENDING_STOP: list[int] = []
_CLEANING_UP: list[bool] = []  # non-empty while the workers are being ended: a further signal waits


def _unraisable(info) -> None:
    if isinstance(info.exc_value, Stop):
        return
    sys.__unraisablehook__(info)


def _thread_exception(args) -> None:
    # Once a stop is under way the pool's own threads may fail as its workers and pipes go (a worker
    # killed by the same group signal, a pipe closed under a reader): the consequence of the stop,
    # which blastune reports in its one line -- not news to print as a traceback.
    if _PENDING_STOP:
        return
    threading.__excepthook__(args)


def _limited(threads):
    if threads is None:
        return contextlib.nullcontext()
    from blastune.control.limits import limit

    return limit(threads, api="all")


def _cpu_fallback(pids) -> float | None:
    """CPU seconds of this process and ``pids`` where schedstat is missing (psutil, if
    installed)."""
    total = time.process_time()
    for pid in pids:
        try:
            import psutil

            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except Exception:
            return None
    return total


class Runner:
    """One layout, started and warmed once, then timed batch by batch."""

    pids: tuple = ()  # worker processes (besides this host) whose threads count

    def __init__(self, layout, workload, cores: int):
        self.layout, self.workload, self.cores = layout, workload, cores
        self.threads_seen: int | None = None

    def timed(self, tasks: int) -> dict:
        """Run one batch; its wall, CPU, run-queue wait, lost CPU, other programs' CPUs (and the
        hypervisor's steal among them), and -- for a process layout -- the CPU and wait of this host
        process: blastune's harness, which hands out the tasks and collects the results.

        This process's CPU comes from ``process_time`` (schedstat of a running thread is updated
        only at scheduler ticks: a 1 ms batch would read 0); the workers' from schedstat (they are
        parked by the time it is read), as are the waits. The lost CPU of a process layout is its
        workers' alone: what the host costs them is reported as the host's share, never as other
        programs'."""
        from blastune.facts import schedstat
        from blastune.measure.load import machine_seconds

        have = schedstat.available()
        here = schedstat.Meter.start([os.getpid()]) if have else None
        pool = schedstat.Meter.start(list(self.pids)) if have and self.pids else None
        m0, own0 = machine_seconds(), time.process_time()
        cpu0 = None if have else _cpu_fallback(self.pids)
        t0 = time.perf_counter()
        self.batch(tasks)
        wall = time.perf_counter() - t0
        own = time.process_time() - own0
        c_here, c_pool = (here.stop() if here else None), (pool.stop() if pool else None)
        m1 = machine_seconds()
        span = max(wall, 1e-9)
        wait_pct = lost_pct = host_wait_pct = None
        host_cpu = own if self.pids else None  # in-process layouts: the host *is* the work
        if c_here is not None:
            cpu = own + (c_pool.run_s if c_pool else 0.0)
            wait = c_here.wait_s + (c_pool.wait_s if c_pool else 0.0)
            wait_pct = 100.0 * wait / span
            if c_pool is not None:
                host_wait_pct = 100.0 * c_here.wait_s / span
                lost_pct = lost_pct_of(c_pool.run_s, c_pool.wait_s, wall, self.cores)
            else:
                lost_pct = lost_pct_of(cpu, wait, wall, self.cores)
        else:
            c1 = _cpu_fallback(self.pids)
            cpu = c1 - cpu0 if c1 is not None and cpu0 is not None else None
        other = steal = None
        if m0 is not None and m1 is not None and cpu is not None and wall > 0:
            other = max(0.0, (m1[0] - m0[0] - cpu) / span)
            steal = max(0.0, (m1[1] - m0[1]) / span)
        return {
            "wall": wall,
            "cpu": cpu,
            "wait_pct": wait_pct,
            "lost_pct": lost_pct,
            "other_cores": other,
            "steal_cores": steal,
            "host_cpu": host_cpu,
            "host_wait_pct": host_wait_pct,
            "tasks": tasks,
        }

    def close(self, abort: bool = False) -> None:
        pass


class InProcess(Runner):
    """serial and thread layouts run here; the BLAS limit is held while a batch runs."""

    pool = None

    def start(self) -> dict:
        from blastune.measure.workloads import build_task

        t0 = time.perf_counter()
        self.task = build_task(self.workload)
        if self.layout.executor == "thread":
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(self.layout.workers)
        t1 = time.perf_counter()
        self.batch(self.layout.workers)  # warm-up: every thread started, first-touch done
        warm = time.perf_counter() - t1
        with _limited(self.layout.threads):
            self.threads_seen = threads_now()
        return {
            "startup_s": time.perf_counter() - t0,
            "threads_seen": self.threads_seen,
            "pids": [],
            "warmup_per_task_s": warm / self.layout.workers,
        }

    def _one(self, i):
        # OpenMP runtimes keep a count per calling thread: a pool thread limits itself
        with _limited(self.layout.threads):
            call(self.task, i)

    def batch(self, tasks: int) -> None:
        with _limited(self.layout.threads):
            if self.pool is None:
                for i in range(tasks):
                    call(self.task, i)
            else:
                list(self.pool.map(self._one, range(tasks)))

    def calibrate(self, target: float) -> dict:
        """Enough tasks for one serial batch of about ``target`` seconds (at least 8)."""
        n, t0 = 0, time.perf_counter()
        with _limited(self.layout.threads):
            while True:
                call(self.task, n)
                n += 1
                elapsed = time.perf_counter() - t0
                if elapsed > min(0.2, target / 2) or n >= 10_000:
                    break
        per_task = elapsed / n
        return {
            "tasks": int(min(100_000, max(8, round(target / per_task)))),
            "per_task_s": per_task,
        }

    def close(self, abort: bool = False) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=not abort, cancel_futures=True)


class InPool(Runner):
    """process layouts: W spawned workers, limited (and pinned) before numpy loads, all warm before
    timing."""

    ex = None

    def start(self) -> dict:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from blastune.measure.jobs import workers

        # spawn: every worker starts clean, as a job would -- its BLAS default comes from the
        # environment
        ctx = multiprocessing.get_context("spawn")
        w = self.layout.workers
        t0 = time.perf_counter()
        cpu_sets = None
        if self.layout.pinned:
            from blastune.control.pinning import plan_layout

            cpu_sets = ctx.Queue()
            for s in plan_layout(w):
                cpu_sets.put(list(s.cpus))
        # the next task index of a batch: the workers take their tasks from it themselves (shared
        # memory, a lock), so the host hands out nothing while a batch runs
        self.next = ctx.Value("q", 0)
        self.ex = ProcessPoolExecutor(
            w,
            mp_context=ctx,
            initializer=workers.init_worker,
            initargs=(
                os.getpid(),
                self.layout.threads,
                self.workload,
                ctx.Barrier(w),
                cpu_sets,
                self.next,
                w,
            ),
        )
        with self._errors():
            ready = [self.ex.submit(workers.ready, k) for k in range(w)]  # one spawn per submit
            self.procs = dict(self._pool_procs())
            probes = [f.result(timeout=READY_TIMEOUT) for f in ready]
        failed = next((e for _, _, e in probes if e is not None), None)
        if failed is not None:
            raise TaskFailed(f"layout {self.layout.spec}: {failed}")
        self.pids = tuple(sorted(self.procs or {p for p, _, _ in probes}))
        self.threads_seen = max((t for _, t, _ in probes if t is not None), default=None)
        return {
            "startup_s": time.perf_counter() - t0,
            "threads_seen": self.threads_seen,
            "pids": list(self.pids),
        }

    def batch(self, tasks: int) -> None:
        """One message per worker, all start together (a barrier), one result each: the host sleeps
        while the batch runs. 0.2.0 fed tasks in chunks of tasks / (workers x 32) from the host's
        feeder and result threads, which then needed a CPU while the workers held every core: on 16
        cores the layout lost up to 0.7 CPUs to blastune itself, on 2 cores its threads waited
        12-17%.
        The workers share the tasks out among themselves (``workers.run_share``)."""
        from blastune.measure.jobs.workers import run_share

        self.next.value = 0
        with self._errors():
            futures = [self.ex.submit(run_share, tasks) for _ in range(self.layout.workers)]
            done = sum(f.result() for f in futures)
        if done != tasks:
            raise BlastuneError(
                f"layout {self.layout.spec}: the workers ran {done} of {tasks} tasks"
            )

    def _pool_procs(self) -> dict:
        """pid -> process of the pool's workers now (the executor's own table; empty if gone)."""
        return getattr(self.ex, "_processes", None) or {}

    def _dead_worker(self) -> str:
        # once one worker dies, the pool terminates the others (SIGTERM): name the one that died
        # first, a crash or an exit of its own, not a sibling the pool ended afterwards. The pool's
        # own thread reaps the workers at the same time as we look, and whichever waitpid() loses
        # the race sees no status yet (exitcode None), so keep asking until every worker has one.
        codes: dict[int, int] = {}
        pending = {**self._pool_procs(), **self.procs}
        deadline = time.monotonic() + DEAD_WORKER_WAIT_S
        while pending and time.monotonic() < deadline:
            for pid, proc in list(pending.items()):
                try:
                    proc.join(0.05)
                    code = proc.exitcode
                except Exception:
                    del pending[pid]
                    continue
                if code is not None:
                    codes[pid] = code
                    del pending[pid]
        dead = {pid: code for pid, code in codes.items() if code != 0}
        if not dead:
            return "cause unknown"
        ended_by_pool = (-signal.SIGTERM, -signal.SIGKILL)
        pid, code = next(
            ((p, c) for p, c in dead.items() if c not in ended_by_pool), next(iter(dead.items()))
        )
        return f"pid {pid}, {exit_text(code)}"

    def _errors(self):
        from concurrent.futures.process import BrokenProcessPool

        spec = self.layout.spec

        @contextlib.contextmanager
        def translate():
            try:
                yield
            except BrokenProcessPool:
                raise BlastuneError(
                    f"a worker process of layout {spec} died ({self._dead_worker()}): a crash in "
                    "the task, or out of memory; is the function importable in a fresh "
                    "interpreter?"
                ) from None
            except TimeoutError:
                raise BlastuneError(
                    f"the workers of layout {spec} did not start within {READY_TIMEOUT:.0f} s"
                ) from None

        return translate()

    def calibrate(self, target: float) -> dict:
        raise BlastuneError("only the serial baseline calibrates the task count")

    def close(self, abort: bool = False) -> None:
        if self.ex is None:
            return
        if abort:  # interrupted or failed: a task may run for hours, do not wait for it
            for proc in list(self._pool_procs().values()):
                proc.terminate()
        self.ex.shutdown(wait=True, cancel_futures=True)
        for proc in self.procs.values():  # reaped: no zombie, no worker left holding stdout
            proc.join(5)


def _serve(cmd, reply) -> None:
    runner = None
    try:
        while True:
            if _PENDING_STOP:
                raise Stop(_PENDING_STOP[0])
            try:
                msg = cmd.recv()
            except EOFError:  # blastune is gone (or done): end quietly
                return
            op, args = msg[0], msg[1:]
            try:
                if op == "start":
                    layout, workload, cores, sys_path = args
                    sys.path[:] = sys_path  # --func modules beside the user, tests' own paths
                    if layout.threads is not None:
                        # before numpy loads: libraries that read their count only at start-up get
                        # it too
                        from blastune.control.limits import worker_initializer

                        worker_initializer(layout.threads)()
                    runner = (InPool if layout.executor == "process" else InProcess)(
                        layout, workload, cores
                    )
                    out = runner.start()
                elif op == "calibrate":
                    out = runner.calibrate(args[0])
                elif op == "batch":
                    out = runner.timed(args[0])
                elif op == "close":
                    runner.close()
                    runner = None
                    reply.send(("ok", None))
                    return
                else:
                    raise BlastuneError(f"unknown host command {op!r}")
            except BlastuneError as exc:
                reply.send(("error", str(exc)))
            except Stop:
                raise
            except (Exception, SystemExit) as exc:
                reply.send(("error", failure(f"layout {runner and runner.layout.spec}", exc)))
            else:
                reply.send(("ok", out))
    finally:
        if runner is not None:
            _CLEANING_UP.append(True)
            runner.close(abort=True)


def main(argv=None) -> int:
    from multiprocessing.connection import Connection

    from blastune.measure.children import die_with_parent, ignore_terminal_signals

    cmd_fd, reply_fd, parent = (int(a) for a in (argv or sys.argv[1:])[:3])

    def stop(signum, frame):
        # A SIGTERM to the whole group is followed at once by blastune's own SIGTERM to this
        # process. Once the workers are being ended, a second Stop would cut that short (the pool's
        # shutdown half done, its manager thread left racing the interpreter's exit): remember it,
        # do not raise.
        _PENDING_STOP.append(128 + signum)
        if not _CLEANING_UP:
            raise Stop(128 + signum)

    sys.unraisablehook = _unraisable
    threading.excepthook = _thread_exception

    signal.signal(signal.SIGTERM, stop)
    ignore_terminal_signals()
    die_with_parent(parent, signal.SIGTERM)
    # each layout reads its thread count back and notes a refused or capped one in the table: the
    # limiter's warnings would only repeat that as Python warnings with source lines
    warnings.simplefilter("ignore", NotControllableWarning)
    cmd, reply = Connection(cmd_fd, writable=False), Connection(reply_fd, readable=False)
    try:
        _serve(cmd, reply)
    except Stop as exc:
        return int(exc.code)
    except (BrokenPipeError, EOFError):
        pass
    return _PENDING_STOP[0] if _PENDING_STOP else 0


if __name__ == "__main__":
    sys.exit(main())
