"""``blastune jobs``: run the same batch of independent tasks under several layouts and measure each.

A layout is an executor (serial, thread, process), a number of workers W and a BLAS thread count T
per worker (None = whatever the library picks by itself: the "naive" layout most users run first).
Per layout the workers are started once, given their limits with ``blastune.worker_initializer``,
warmed up (inputs built, one task run, all workers checked in), and only then is the batch timed --
``repeats`` times, reporting the median. CPU time is read for the main process (``os.times``) and
for each worker process (psutil, else /proc), so oversubscription shows as CPU burnt without work.
"""
from __future__ import annotations

import os
import statistics
import time
import warnings as _warnings  # run_jobs has a list named warnings
from dataclasses import asdict, dataclass, field

from blastune.errors import BlastuneError, NotControllableWarning
from blastune.measure.sweep.core import _gib
from blastune.measure.sweep.core import default_threads as _powers_up_to  # 1, 2, 4, ... n, and n itself
from blastune.measure.workloads import Workload, build_task

SCHEMA = "blastune.jobs/1"
EXECUTORS = ("serial", "thread", "process")
TARGET_SERIAL_SECONDS = 1.0   # calibrated --tasks: one serial repeat takes about this long
SLOW_FACTOR = 5.0             # a layout this many times slower than serial is timed only once ...
SLOW_MIN_SECONDS = 2.0        # ... when that also costs more than this per repeat
COOL_DOWN_SECONDS = 0.2       # pause after a multi-threaded BLAS batch (its idle threads spin briefly)
SHORT_BATCH_SECONDS = 0.1     # serial batches shorter than this measure overheads more than the work
OTHER_LOAD_WARN = 0.25        # other programs busy on this many CPUs on average: say timings are disturbed
UNSTABLE_SPREAD = 0.15        # (max - min) / median above this is reported as unstable
READY_TIMEOUT = 300.0         # seconds for all workers to start and warm up on a loaded machine
WORKER_BYTES = 64 * 2**20     # a worker process before its task's data: Python, numpy, the BLAS (~35 MiB)


@dataclass(frozen=True)
class Layout:
    executor: str             # serial | thread | process
    workers: int
    threads: int | None       # BLAS threads per worker; None = the library's default (naive)

    @property
    def head(self) -> str:
        """'serial', '2 threads', '2 processes' -- the seed's row names."""
        if self.executor == "serial":
            return "serial"
        plural = "" if self.workers == 1 else ("es" if self.executor == "process" else "s")
        return f"{self.workers} {self.executor}{plural}"

    @property
    def label(self) -> str:
        blas = "default BLAS threads" if self.threads is None else f"{self.threads} BLAS thread" + (
            "s" if self.threads != 1 else "")
        return f"{self.head} x {blas}"

    @property
    def spec(self) -> str:
        """The --layouts spelling, e.g. process:2x1 or process:2xdefault."""
        return f"{self.executor}:{self.workers}x{'default' if self.threads is None else self.threads}"

    def to_dict(self):
        return {"executor": self.executor, "workers": self.workers, "threads": self.threads,
                "label": self.label, "spec": self.spec}


@dataclass
class LayoutResult:
    layout: Layout
    walls: list[float]                 # seconds per timed repeat of the whole batch
    cpus: list[float | None]           # CPU seconds per repeat (main + workers), None if unreadable
    threads_seen: int | None           # BLAS threads the workers actually had (read back)
    startup_s: float                   # starting and warming the workers (not in the timing)
    wall_s: float = 0.0                # median of walls
    spread: float = 0.0                # (max - min) / median of walls
    tasks_per_s: float = 0.0
    speedup: float | None = None       # serial-baseline wall / this wall
    cpu_s: float | None = None         # median CPU seconds
    busy_cores: float | None = None    # cpu_s / wall_s: how many cores the layout kept busy
    cpu_efficiency: float | None = None  # baseline CPU / this CPU: share of the CPU burnt that did work
    notes: list[str] = field(default_factory=list)

    def to_dict(self):
        d = asdict(self)
        d["layout"] = self.layout.to_dict()
        return d


@dataclass
class JobsResult:
    workload: Workload
    tasks: int
    repeats: int
    usable_cores: int
    default_threads: int | None        # what the BLAS picks when nobody sets a count
    results: list[LayoutResult]
    fingerprint: dict
    other_load_cores: float | None = None  # CPUs other programs kept busy meanwhile (None: not measurable)
    warnings: list[str] = field(default_factory=list)
    created: str = ""

    @property
    def baseline(self) -> LayoutResult:
        return self.results[0]

    @property
    def best(self) -> LayoutResult:
        return max(self.results, key=lambda r: r.tasks_per_s)

    def to_dict(self):
        from blastune import __version__

        return {
            "schema": SCHEMA, "blastune_version": __version__, "created": self.created,
            "fingerprint": self.fingerprint, "workload": self.workload.to_dict(),
            "tasks": self.tasks, "repeats": self.repeats, "usable_cores": self.usable_cores,
            "default_threads": self.default_threads, "other_load_cores": self.other_load_cores,
            "baseline": self.baseline.layout.spec, "best": self.best.layout.spec,
            "results": [r.to_dict() for r in self.results], "warnings": self.warnings,
        }


# --- which layouts ----------------------------------------------------------------------------------

def default_layouts(workload: Workload, cores: int) -> list[Layout]:
    """Every W x T that fits the cores (powers of two and the full count), plus the naive layout.

    Workloads that never call BLAS get T = 1 only: their BLAS thread count cannot matter.
    """
    thread_counts = (lambda room: sorted({1, room})) if workload.uses_blas else (lambda room: [1])
    layouts = [Layout("serial", 1, t) for t in thread_counts(cores)]
    for w in _powers_up_to(cores):
        if w == 1:
            continue
        for t in thread_counts(max(1, cores // w)):
            layouts += [Layout("thread", w, t), Layout("process", w, t)]
    if workload.uses_blas and cores > 1:
        layouts.append(Layout("process", cores, None))
    return layouts


def parse_layouts(text: str) -> list[Layout]:
    """'serial,thread:2x1,process:2x1,process:2xdefault' -> layouts (W defaults to 1, T to 1)."""
    out = []
    for item in str(text).replace(" ", "").split(","):
        if not item:
            continue
        executor, _, shape = item.partition(":")
        if executor not in EXECUTORS:
            raise BlastuneError(f"invalid layout {item!r}: the executor must be one of {', '.join(EXECUTORS)} "
                                "(e.g. serial, thread:2x1, process:2x1, process:2xdefault)")
        w_text, _, t_text = (shape or "1").partition("x")
        try:
            workers = int(w_text)
            threads = None if t_text in ("default", "naive") else int(t_text or 1)
        except ValueError:
            raise BlastuneError(f"invalid layout {item!r}: use EXECUTOR:WxT with whole numbers, "
                                "T may be 'default' (e.g. process:2x1)") from None
        if workers < 1 or (threads is not None and threads < 1):
            raise BlastuneError(f"invalid layout {item!r}: workers and threads must be >= 1")
        if executor == "serial" and workers != 1:
            raise BlastuneError(f"invalid layout {item!r}: serial runs 1 worker (use serial:1xT)")
        out.append(Layout(executor, workers, threads))
    if not out:
        raise BlastuneError("no layout given: e.g. --layouts serial,process:2x1")
    return out


def layouts_from_lists(workers: list[int], threads: list[int | None],
                       executors=("thread", "process")) -> list[Layout]:
    """--workers 1,2 --threads 1,2: W = 1 is serial, W > 1 runs under each executor."""
    out = []
    for w in workers:
        for t in threads:
            if w == 1:
                out.append(Layout("serial", 1, t))
            else:
                out += [Layout(e, w, t) for e in executors if e != "serial"]
    return out


def with_baseline(layouts: list[Layout]) -> list[Layout]:
    """Serial x 1 BLAS thread first: every speed-up is measured against it."""
    base = Layout("serial", 1, 1)
    return [base] + [lay for lay in dict.fromkeys(layouts) if lay != base]


# --- CPU accounting ---------------------------------------------------------------------------------

def _self_cpu() -> float:
    return time.process_time()  # every thread of this process, nanosecond clock (os.times ticks at 10 ms)


def _pid_cpu(pid: int) -> float | None:
    """User + system seconds of a live process, every thread included."""
    try:  # Linux: the scheduler's nanosecond run time of each thread
        total = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except Exception:  # no psutil, or the process is gone
        return None


def _cpu_now(pids) -> float | None:
    total = _self_cpu()
    for pid in pids:
        c = _pid_cpu(pid)
        if c is None:
            return None
        total += c
    return total


# --- worker side (runs in the worker processes; module level so it pickles) --------------------------

_TASK = None
_INIT_ERROR: str | None = None  # why this worker could not build or warm its task (reported, not raised)


class TaskFailed(BlastuneError):
    """A task raised; carries a one-line description across the process boundary."""


def _failure(what: str, exc: BaseException) -> str:
    """'task 3 raised ValueError: ...' on one line, short enough to read."""
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{what} raised {type(exc).__name__}" + (f": {text}" if text else "")


def _init_process_worker(threads, workload, barrier):
    global _TASK, _INIT_ERROR
    import signal

    # Ctrl-C reaches the whole process group: the parent handles it (and ends the workers), so the
    # workers must not each print a KeyboardInterrupt traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if threads is not None:
        from blastune.control.limits import worker_initializer

        worker_initializer(threads)()
    # an initializer that raises breaks the whole pool with a traceback on stderr and no word on the
    # cause: keep the reason and report it from _ready instead
    try:
        _TASK = build_task(workload)
    except BlastuneError as exc:
        _INIT_ERROR = str(exc)
    except (Exception, SystemExit) as exc:
        _INIT_ERROR = _failure("building the task in a worker process", exc)
    else:
        try:
            _TASK(0)  # warm-up: first-touch, BLAS thread start, lazy imports
        except (Exception, SystemExit) as exc:
            _INIT_ERROR = _failure("task 0 (the warm-up in a worker process)", exc)
    barrier.wait(READY_TIMEOUT)  # hold every worker until all are warm: none may take two warm-up probes


def _threads_now() -> int | None:
    """The BLAS threads in effect here: read back from run-time controllable libraries, else what the
    environment or the build fixed (Debian's BLIS, ATLAS); None when no BLAS is loaded."""
    try:
        from blastune.control.limits import get_threads

        counts = get_threads("blas")
        if not counts:
            from blastune.facts.detect import inventory

            counts = {lib.filepath: lib.num_threads for lib in inventory()
                      if lib.api != "openmp" and lib.num_threads}
    except Exception:  # reading the count must never stop a measurement
        return None
    return max(counts.values()) if counts else None


def _ready(_):
    return os.getpid(), _threads_now(), _INIT_ERROR


def _run_task(i):
    if _INIT_ERROR is not None:
        raise TaskFailed(_INIT_ERROR)
    try:
        _TASK(i)
    except (Exception, SystemExit) as exc:  # sys.exit() in a task must not end blastune with its status
        raise TaskFailed(_failure(f"task {i}", exc)) from None
    return None  # results stay in the worker: shipping them back would time pickling, not the work


# --- runners: one per layout, started and warmed once, then timed batch by batch --------------------

def _limited(threads):
    import contextlib

    if threads is None:
        return contextlib.nullcontext()
    from blastune.control.limits import limit

    return limit(threads, api="all")


def _call(fn, i):
    try:
        fn(i)
    except (Exception, SystemExit) as exc:  # sys.exit() in a task must not end blastune with its status
        raise TaskFailed(_failure(f"task {i}", exc)) from None


class _Runner:
    pids: tuple = ()  # worker processes whose CPU time counts (besides this process)
    pool = None       # thread layouts: their executor, once started

    def __init__(self, layout: Layout, workload: Workload):
        self.layout, self.workload = layout, workload
        self.walls: list[float] = []
        self.cpus: list[float | None] = []
        self.notes: list[str] = []
        self.threads_seen: int | None = None
        self.startup_s = 0.0

    def timed(self, tasks: int) -> float:
        c0 = _cpu_now(self.pids)
        t0 = time.perf_counter()
        self.batch(tasks)
        wall = time.perf_counter() - t0
        c1 = _cpu_now(self.pids)
        self.walls.append(wall)
        self.cpus.append(c1 - c0 if c0 is not None and c1 is not None else None)
        return wall

    def result(self, tasks: int) -> LayoutResult:
        return _summarize(LayoutResult(self.layout, self.walls, self.cpus, self.threads_seen, self.startup_s),
                          tasks, self.notes)

    def close(self, abort: bool = False) -> None:
        pass


class _InProcess(_Runner):
    """serial and thread layouts run here; the BLAS limit is held while a batch runs."""

    def start(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        t0 = time.perf_counter()
        # build first (imports numpy/scipy and so loads their BLAS), then limit: the limit then covers them
        self.task = build_task(self.workload)
        self.pool = ThreadPoolExecutor(self.layout.workers) if self.layout.executor == "thread" else None
        self.batch(self.layout.workers)  # warm-up: every thread started, first-touch done
        with _limited(self.layout.threads):
            self.threads_seen = _threads_now()
        self.startup_s = time.perf_counter() - t0

    def _one(self, i):
        # OpenMP runtimes keep a count per calling thread: a pool thread limits itself
        with _limited(self.layout.threads):
            _call(self.task, i)

    def batch(self, tasks: int) -> None:
        with _limited(self.layout.threads):
            if self.pool is None:
                for i in range(tasks):
                    _call(self.task, i)
            else:
                list(self.pool.map(self._one, range(tasks)))

    def calibrate(self, target: float) -> int:
        """Enough tasks for one serial batch of about ``target`` seconds (at least 8)."""
        n, t0 = 0, time.perf_counter()
        with _limited(self.layout.threads):
            while True:
                _call(self.task, n)
                n += 1
                elapsed = time.perf_counter() - t0
                if elapsed > min(0.2, target / 2) or n >= 10_000:
                    break
        return int(min(100_000, max(8, round(target / (elapsed / n)))))

    def close(self, abort: bool = False) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=not abort, cancel_futures=True)


class _InPool(_Runner):
    """process layouts: W spawned workers, limited by worker_initializer, all warm before timing."""

    def start(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: every worker starts clean, as a job would -- its BLAS default comes from the environment,
        # not from whatever count the parent process happens to hold (fork would inherit that)
        ctx = multiprocessing.get_context("spawn")
        w = self.layout.workers
        t0 = time.perf_counter()
        self.ex = ProcessPoolExecutor(w, mp_context=ctx, initializer=_init_process_worker,
                                      initargs=(self.layout.threads, self.workload, ctx.Barrier(w)))
        with self._errors():
            ready = [self.ex.submit(_ready, k) for k in range(w)]  # one spawn per submit
            probes = [f.result(timeout=READY_TIMEOUT) for f in ready]
        failed = next((e for _, _, e in probes if e is not None), None)
        if failed is not None:
            raise TaskFailed(f"layout {self.layout.spec}: {failed}")
        self.startup_s = time.perf_counter() - t0
        self.pids = tuple(sorted(getattr(self.ex, "_processes", None) or {p for p, _, _ in probes}))
        self.threads_seen = max((t for _, t, _ in probes if t is not None), default=None)

    def batch(self, tasks: int) -> None:
        chunk = max(1, tasks // (self.layout.workers * 32))  # few IPC round trips, little imbalance at the end
        with self._errors():
            list(self.ex.map(_run_task, range(tasks), chunksize=chunk))

    def _errors(self):
        import contextlib
        from concurrent.futures.process import BrokenProcessPool

        spec = self.layout.spec

        @contextlib.contextmanager
        def translate():
            try:
                yield
            except BrokenProcessPool as exc:
                raise BlastuneError(f"a worker process of layout {spec} died ({exc}); is the function "
                                    "importable in a fresh interpreter, and does it fit in memory?") from None
            except TimeoutError:
                raise BlastuneError(f"the workers of layout {spec} did not start within "
                                    f"{READY_TIMEOUT:.0f} s") from None
        return translate()

    def close(self, abort: bool = False) -> None:
        ex = getattr(self, "ex", None)
        if ex is None:
            return
        if abort:  # interrupted or failed: a task may run for hours, do not wait for it
            for proc in list((getattr(ex, "_processes", None) or {}).values()):
                proc.terminate()
        ex.shutdown(wait=True, cancel_futures=True)


def _runner(layout: Layout, workload: Workload) -> _Runner:
    return (_InPool if layout.executor == "process" else _InProcess)(layout, workload)


def _summarize(res: LayoutResult, tasks: int, notes) -> LayoutResult:
    """Median wall and CPU over the repeats, and what follows from them."""
    res.wall_s = statistics.median(res.walls)
    res.spread = (max(res.walls) - min(res.walls)) / res.wall_s if res.wall_s else 0.0
    res.tasks_per_s = tasks / res.wall_s if res.wall_s else float("inf")
    known = [c for c in res.cpus if c is not None]
    res.cpu_s = statistics.median(known) if len(known) == len(res.cpus) else None
    res.busy_cores = res.cpu_s / res.wall_s if res.cpu_s is not None and res.wall_s else None
    res.notes = list(notes)
    return res


def _groups(layouts: list[Layout], cores: int) -> list[list[Layout]]:
    """Consecutive layouts whose worker processes may all be alive at once (bounded for big machines)."""
    cap = max(8, 2 * cores)
    groups, cur, live = [], [], 0
    for lay in layouts:
        n = lay.workers if lay.executor == "process" else 0
        if cur and live + n > cap:
            groups.append(cur)
            cur, live = [], 0
        cur.append(lay)
        live += n
    return groups + [cur] if cur else groups


def check_memory(workload: Workload, groups: list[list[Layout]]) -> None:
    """Refuse, before any worker starts, a plan whose live workers would not fit in memory: the serial
    baseline stays alive beside each group, each thread layout and each worker process builds its own
    inputs, and each worker process is a Python with numpy and a BLAS besides."""
    from blastune.facts.cpu import available_memory

    each = workload.memory_bytes()
    copies, procs = 1, 0
    for g in groups:
        c = sum(lay.workers if lay.executor == "process" else 1 for lay in g)
        if 1 + c > copies:
            copies, procs = 1 + c, sum(lay.workers for lay in g if lay.executor == "process")
    need = each * copies + WORKER_BYTES * procs
    avail, source = available_memory()
    if avail is not None and need > avail:
        raise BlastuneError(f"{workload.describe()} needs about {_gib(each)} per worker and the layouts keep "
                            f"{copies} workers ({procs} of them processes) alive at once: {_gib(need)}, but only "
                            f"{_gib(avail)} is available ({source}): choose a smaller --size, or fewer --layouts")


def _cool_down(layout: Layout) -> None:
    # idle BLAS threads spin for a moment after a call returns; let them park before the next batch
    if layout.threads is None or layout.threads > 1:
        time.sleep(COOL_DOWN_SECONDS)


def _default_threads() -> int | None:
    """What the BLAS would run with if nobody set a count: the thread variables, else the usable cores."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def run_jobs(workload: Workload | str | None = None, tasks: int | None = None, layouts: list[Layout] | None = None,
             repeats: int = 3, progress=None, target_seconds: float = TARGET_SERIAL_SECONDS,
             **workload_kw) -> JobsResult:
    """Measure ``tasks`` tasks of ``workload`` under each layout (default: ``default_layouts``).

    All layouts' workers are started and warmed first; then each round times one batch per layout,
    round after round (interleaved), so a burst of load from other programs hits every layout rather
    than whichever one happened to be running. A layout over SLOW_FACTOR times slower than serial (and
    slower than SLOW_MIN_SECONDS) is timed in the first round only.

    ``tasks=None`` calibrates the count so one serial batch takes about ``target_seconds``. ``progress``
    is called as ``progress(k, n, layout)`` before each timed batch. Keyword arguments build the workload
    (``op=``, ``size=``, ``func=``, ...) when none is given; ``workload`` may also be "python" or "numpy".
    """
    from datetime import datetime, timezone

    from blastune.facts.cpu import cpu_info
    from blastune.facts.fingerprint import fingerprint
    from blastune.measure.workloads import make_workload

    if isinstance(workload, str):  # run_jobs(workload="python") reads like the CLI's --workload python
        workload, workload_kw = None, {**workload_kw, "workload": workload}
    if workload is None:
        workload = make_workload(**workload_kw)
    if tasks is not None and (isinstance(tasks, bool) or not isinstance(tasks, int) or tasks < 1):
        raise BlastuneError(f"invalid number of tasks {tasks!r}: must be a whole number >= 1")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise BlastuneError(f"invalid repeats {repeats!r}: must be a whole number >= 1")
    cpu = cpu_info()
    cores = cpu.usable_cores
    plan = with_baseline(layouts if layouts is not None else default_layouts(workload, cores))
    check_memory(workload, _groups(plan[1:], cores))
    warnings = []
    others = _other_load_probe()
    base = _runner(plan[0], workload)
    alive: list[_Runner] = [base]  # closed at once (workers terminated) if anything goes wrong
    done: list[_Runner] = []
    batches, total = 0, repeats * len(plan)
    with _warnings.catch_warnings():
        # each layout reads its thread count back and notes a refused or capped one in the table: the
        # limiter's warnings would only repeat that as Python warnings with source lines (the filter list
        # is process-wide, so it also covers the thread layouts' pool threads)
        _warnings.simplefilter("ignore", NotControllableWarning)
        try:
            base.start()
            if tasks is None:
                tasks = base.calibrate(target_seconds)
            for group in _groups(plan[1:], cores) or [[]]:
                runners = []
                for layout in group:
                    runners.append(_runner(layout, workload))
                    alive.append(runners[-1])
                    runners[-1].start()
                active = [base, *runners]
                for rnd in range(repeats):
                    for r in list(active):
                        if progress is not None:
                            progress(min(batches, total - 1), total, r.layout)
                        batches += 1
                        wall = r.timed(tasks)
                        _cool_down(r.layout)
                        if rnd == 0 and r is not base and repeats > 1 and \
                                wall > max(SLOW_FACTOR * base.walls[-1], SLOW_MIN_SECONDS):
                            r.notes.append(f"timed once: {wall:.2f} s is over {SLOW_FACTOR:g}x the serial time")
                            active.remove(r)
                for r in runners:
                    alive.remove(r)
                    r.close()
                done += runners
            alive.remove(base)
            base.close()
        except BaseException:  # Ctrl-C or a failing task: a task may run for hours, do not wait for it
            for r in alive:
                r.close(abort=True)
            raise
    other_cores = others.other_cores() if others is not None else None
    if other_cores is not None and other_cores >= OTHER_LOAD_WARN:
        warnings.append(f"other programs kept {other_cores:.2f} of the {cpu.logical_cores} CPUs busy during the "
                        "measurement (/proc/stat): layouts that need every core are understated")
    results = [base.result(tasks)] + [r.result(tasks) for r in done]
    if results[0].wall_s < SHORT_BATCH_SECONDS:
        warnings.append(f"a serial batch took only {results[0].wall_s * 1e3:.0f} ms: start-up and hand-over costs "
                        f"weigh in; give more --tasks (or none: it then calibrates to about "
                        f"{TARGET_SERIAL_SECONDS:g} s)")
    _compare(results, cores, warnings)
    import numpy  # noqa: F401  (the fingerprint names numpy's BLAS, loaded by now in any case)

    return JobsResult(workload=workload, tasks=tasks, repeats=repeats, usable_cores=cores,
                      other_load_cores=other_cores,
                      default_threads=_naive_threads(results) or _default_threads() or cores,
                      results=results, fingerprint=fingerprint(cpu), warnings=warnings,
                      created=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def _naive_threads(results) -> int | None:
    return next((r.threads_seen for r in results if r.layout.threads is None and r.threads_seen), None)


def _compare(results: list[LayoutResult], cores: int, warnings: list[str]) -> None:
    base = results[0]
    for r in results:
        r.speedup = base.wall_s / r.wall_s if r.wall_s else None
        if r.cpu_s and base.cpu_s is not None:
            r.cpu_efficiency = base.cpu_s / r.cpu_s
        if r.spread > UNSTABLE_SPREAD and len(r.walls) > 1:
            warnings.append(f"{r.layout.label}: unstable, repeats differ by {r.spread:.0%} of the median")
        if r.threads_seen is not None and r.layout.workers * r.threads_seen > cores:
            r.notes.append(f"oversubscribed: {r.layout.workers} x {r.threads_seen} threads on {cores} cores")
        # one busy core per single-threaded worker is what such a layout should show; much less means
        # the cores went to someone else (or the tasks wait), so its speed-up says little about the layout
        lay = r.layout
        expected = min(lay.workers, cores) if lay.threads == 1 and lay.executor in ("serial", "process") else None
        if expected and r.busy_cores is not None and r.busy_cores < 0.75 * expected:
            r.notes.append(f"kept only {r.busy_cores:.2f} of {expected} core(s) busy: other programs took the "
                           "rest, or the tasks wait (I/O, locks)")
        if r.layout.threads is not None and r.threads_seen is not None and r.threads_seen != r.layout.threads:
            where = "this process runs" if lay.executor != "process" else "the workers run"
            r.notes.append(f"asked for {r.layout.threads} BLAS threads, {where} {r.threads_seen} (the library "
                           "caps the count, or reads it only at start-up: process layouts set it before it loads)")


def _other_load_probe():
    """How much other programs competed with us: ``blastune.cpuload``'s probe, with our workers' CPU
    time counted as ours (None where it cannot be measured)."""
    try:
        from blastune.measure.load import LoadProbe
    except ImportError:  # not POSIX: no resource module
        return None
    return LoadProbe(own_seconds=_own_cpu)


def _own_cpu() -> float:
    """This process and every child it has waited for (the workers, once their pool shut down)."""
    import resource

    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + child.ru_utime + child.ru_stime


