"""Run-time thread limits: ``limit`` (context manager and decorator), ``get_threads``,
``set_threads``, ``worker_initializer``.

Why not just ``threadpoolctl.threadpool_limits``? It rescans every loaded library on each call
(~1 ms), and its OpenBLAS controller obeys only the first thread that set a count, so a limit set
inside a thread-pool worker can silently do nothing. Here the controllers are cached (rescanned only
when new modules were imported), the raw library calls are made directly, and every setting is read
back, so a silent no-op is impossible.

Who a limit belongs to -- its *owner* -- is the thread that entered it, or the asyncio task when it
was entered inside one (tasks interleave on one thread; each is an owner of its own). A BLAS thread
pool is process-wide (an OpenBLAS pthreads build has one count for the whole process), so:
  * within one owner, the innermost ``limit`` holds (nesting unwinds exactly);
  * across owners, the most restrictive of their innermost limits holds: a limit is a cap that holds
    at every step of the code inside it, whatever other threads or tasks do meanwhile. A task in
    ``limit(2)`` runs with 1 thread while another task sits (even suspended) in ``limit(1)``, and
    with 2 as soon as that one leaves -- whatever order the owners leave in;
  * the counts found before the first limit return when the last active limit exits.
An exit finds its own entry wherever it runs: a generator holding ``with limit(1): yield`` that is
finished on another thread or task releases exactly its own limit.
OpenMP runtimes (and OpenMP builds of OpenBLAS) keep their count per calling thread: for those the
limits of the owners on a thread apply to, and are restored in, that thread only (a limit that exits
on another thread restores its thread's OpenMP count when that thread next enters or leaves a
limit). A worker started by ``worker_initializer`` starts afresh: limits inherited through a fork
are dropped.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import warnings

from blastune.core.counts import MAX_THREADS, check_count, check_threads, per_job
from blastune.errors import BlastuneError, NotControllableError, NotControllableWarning

APIS = {"blas": ("blas",), "openmp": ("openmp",), "all": ("blas", "openmp")}


class _Lib:
    """One loaded library as the limiter sees it (kept minimal: this is the hot path)."""

    __slots__ = ("path", "vendor", "kind", "get", "set", "per_thread", "info")

    def __init__(self, path, vendor, kind, control, info):
        self.path, self.vendor, self.kind, self.info = path, vendor, kind, info
        self.get = control.get if control else None
        self.set = control.set if control else None
        self.per_thread = bool(control and control.per_thread)


class _State:
    def __init__(self):
        self.lock = threading.RLock()
        self.marker = -1  # len(sys.modules) at the last scan
        self.seen: set[str] = set()
        self.shared: list[_Lib] = []  # run-time controllable, one process-wide count
        self.local: list[_Lib] = []  # run-time controllable, per calling thread
        self.fixed: list[_Lib] = []  # env-only or fixed at build
        # owner -> its active limits, innermost last, as (n, kinds, limit object). An owner is the
        # thread id, or (thread id, asyncio task) for code running in a task.
        self.stacks: dict = {}
        self.originals: dict[str, int] = {}  # process-wide counts before the first active limit
        self.applied: dict[str, int] = {}
        # thread id -> (per-thread counts before its first limit, the paths its limits set)
        self.local_originals: dict[int, tuple[dict[str, int], set[str]]] = {}
        self.warned: set[tuple[str, int]] = set()


_S = _State()


def _owner():
    """Who a limit belongs to: this thread, or the asyncio task running in it.

    Tasks interleave on one thread, so the thread alone cannot tell their limits apart (task A's
    exit would pop task B's limit). asyncio is looked up only when something imported it.
    """
    tid = threading.get_ident()
    aio = sys.modules.get("asyncio")
    if aio is not None:
        loop = aio._get_running_loop()
        if loop is not None:
            task = aio.current_task(loop)
            if task is not None:
                return (tid, task)
    return tid


def _tid(owner) -> int:
    return owner if type(owner) is int else owner[0]


def _after_fork_in_child() -> None:
    """Only the forking thread lives on in a forked child (multiprocessing's default on Linux).

    A lock another thread held at the fork would stay held for ever (the child's next limit would
    hang), and that thread's limits can never exit: start from a fresh lock, keep only this
    thread's limits, and bring the libraries back to what those (or the originals) ask for.
    """
    _S.lock = threading.RLock()
    me = threading.get_ident()
    dead = [owner for owner in _S.stacks if _tid(owner) != me]
    for tid in list(_S.local_originals):
        if tid != me:
            del _S.local_originals[tid]
    if not dead:
        return
    for owner in dead:
        del _S.stacks[owner]
    _S.applied.clear()  # another thread may have been half-way through an update
    try:
        _apply_shared()
    except Exception:  # never break a fork; the next limit or set_threads applies again
        pass
    if not _S.stacks:
        _S.originals.clear()


def _start_fresh() -> None:
    """Forget every active limit (a worker process starts a fresh context; see worker_initializer).

    A worker forked inside ``with limit(2):`` inherits that limit, but the with-block belongs to the
    parent: it never exits in the worker, and it would cap the worker's own count for ever.
    """
    with _S.lock:
        _S.stacks.clear()
        _S.originals.clear()
        _S.local_originals.clear()
        _S.applied.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _scan() -> list[_Lib]:
    """Find libraries loaded since the last scan; returns the new run-time-controllable shared
    ones."""
    from blastune.facts.detect import family_of, loaded_paths, safe_describe
    from blastune.libraries import OPENMP_FAMILIES

    new = []
    for path in loaded_paths():
        if path in _S.seen:
            continue
        _S.seen.add(path)
        fam = family_of(path, own_only=True)
        if fam is None:
            continue
        kind = "openmp" if fam in OPENMP_FAMILIES else "blas"
        info = safe_describe(fam, path)  # a library that cannot be queried must not break limit()
        ctl = fam.control(path) if info.control == "runtime" else None
        if ctl is not None:
            lib = _Lib(path, fam.name, kind, ctl, info)
            (_S.local if lib.per_thread else _S.shared).append(lib)
            if not lib.per_thread:
                new.append(lib)
        else:
            _S.fixed.append(_Lib(path, fam.name, kind, None, info))
    _S.marker = len(sys.modules)
    return new


def _refresh() -> list[str] | None:
    """Rescan when something new may have been loaded; limit newcomers while limits are active."""
    if len(sys.modules) == _S.marker:
        return None
    new = _scan()
    if new and _S.stacks:
        for lib in new:
            _S.originals[lib.path] = lib.get()
        return _apply_shared()
    return None


def _warn(problems) -> None:
    """Warn the public function's caller, once the state is whole (``-W error`` raises)."""
    for msg in problems or ():
        warnings.warn(msg, NotControllableWarning, stacklevel=3)


def rescan() -> None:
    """Force a rescan (for libraries loaded with ctypes rather than an import)."""
    with _S.lock:
        _S.marker = -1
        problems = _refresh()
    _warn(problems)


def _target(kind: str, tid: int | None = None):
    """The most restrictive of the owners' innermost limits for ``kind`` (only ``tid``'s owners if
    given)."""
    best = None
    for owner, stack in _S.stacks.items():
        if tid is not None and _tid(owner) != tid:
            continue
        for n, kinds, _ in reversed(stack):
            if kind in kinds:
                if best is None or n < best:
                    best = n
                break
    return best


def _apply_local(tid: int) -> list[str] | None:
    """Per-thread runtimes (OpenMP): bring this thread to its own limits' target, or back to the
    counts it had before its first limit. Only the calling thread can be changed.

    Several handles may reach one per-thread setting (an OpenMP OpenBLAS and libgomp share the
    thread's OpenMP count), so: the counts of all of them are taken together before any is set, only
    the handles of a kind some limit asks for are set, and put-backs come before sets.
    """
    active = any(_tid(owner) == tid for owner in _S.stacks)
    record = _S.local_originals.get(tid)
    if record is None:
        if not active:
            return None
        record = _S.local_originals[tid] = ({lib.path: lib.get() for lib in _S.local}, set())
    originals, touched = record
    targets = []
    for lib in _S.local:
        originals.setdefault(lib.path, lib.get())  # loaded since this thread's first limit
        n = _target(lib.kind, tid) if active else None
        if n is not None:
            targets.append((lib, n))
        elif lib.path in touched:
            touched.discard(lib.path)
            if lib.get() != originals[lib.path]:
                lib.set(originals[lib.path])
    problems = None
    for lib, n in targets:
        touched.add(lib.path)
        if lib.get() != n:
            lib.set(n)
    for lib, n in targets:
        if lib.get() != n:  # read back: a library that ignored us must not pass silently
            problems = problems or []
            problems.append(f"{lib.vendor} at {lib.path} did not take {n} threads")
    if not active:
        del _S.local_originals[tid]
    return problems


def _apply_shared() -> list[str] | None:
    """Set every process-wide library to its target (active limits) or its original count.

    Returns what a library refused (None when all is well), for the caller to warn about.
    """
    targets = {}
    problems = None
    applied = _S.applied
    for lib in _S.shared:
        kind = lib.kind
        n = targets.get(kind, 0)
        if n == 0:
            n = targets[kind] = _target(kind)
        if n is None:
            n = _S.originals.get(lib.path)
            if n is None:
                continue
        if applied.get(lib.path) != n:
            lib.set(n)
            got = lib.get()  # read back: a library that ignored us must not pass silently
            applied[lib.path] = got
            if got != n:
                applied.pop(lib.path, None)
                problems = problems or []
                problems.append(
                    f"{lib.vendor} at {lib.path} was asked for {n} threads but reports {got}"
                )
    return problems


def _apply() -> list[str]:
    """Every library to its target: the process-wide ones, and this thread's per-thread ones."""
    problems = _apply_shared() or []
    if _S.local:
        problems += _apply_local(threading.get_ident()) or []
    return problems


def _check_fixed(n: int, kinds, strict: bool, cap: bool = True) -> None:
    """Warn (or raise, strict) for libraries that cannot be brought to ``n`` threads at run time.

    A limit is a cap: a library fixed at 1 thread already obeys ``limit(2)``, so only libraries that
    may run more than ``n`` threads (or an unknown number) are reported. ``set_threads`` asks for
    exactly ``n`` (``cap=False``).
    """
    for lib in _S.fixed:
        info = lib.info
        if (
            lib.kind not in kinds
            or info.num_threads == n
            or (cap and info.num_threads is not None and info.num_threads <= n)
        ):
            continue
        runs = (
            f"{info.num_threads} thread(s)"
            if info.num_threads is not None
            else "an unknown number of threads"
        )
        if info.control == "env" and info.control_vars:
            var = info.control_vars[0]
            msg = (
                f"{info.vendor} ({lib.path}) cannot change its threads at run time: it reads {var} "
                f"only when the process starts and runs {runs}. Set {var}={n} before the process "
                f"starts (e.g. `blastune run -t {n} -- CMD`)."
            )
        else:
            msg = (
                f"{info.vendor} ({lib.path}) has its thread count fixed when it was built and runs "
                f"{runs}; no call or environment variable changes it. Use a threaded BLAS "
                f"(OpenBLAS, MKL, BLIS) to run {n} threads."
            )
        if strict:
            raise NotControllableError(msg)
        if (lib.path, n) not in _S.warned:
            _S.warned.add((lib.path, n))
            warnings.warn(msg, NotControllableWarning, stacklevel=4)


def _resolve(n, jobs) -> int:
    if type(n) is int and jobs is None and 1 <= n <= MAX_THREADS:  # the common case, kept fast
        return n
    if isinstance(n, str) and n == "auto":
        from blastune.control.profile import auto_threads

        return check_threads(auto_threads(jobs)[0])  # the one bound, whatever the profile says
    if jobs is not None:
        jobs = check_count(jobs, "jobs")
        if n is not None:
            raise BlastuneError("give a thread count or jobs=N, not both")
        from blastune.facts.cpu import usable_cores

        return per_job(usable_cores()[0], jobs)
    return check_threads(n)  # numpy integers too: counts are often computed with numpy


def _check_counts(who: str, unit: str, n, jobs, pin: bool) -> None:
    """The count arguments ``limit()`` and ``worker_initializer()`` both take, checked once."""
    if pin and (n is not None or jobs is None):
        raise BlastuneError(
            f"pin=True needs jobs=N and no thread count: each {unit}'s threads are its CPUs"
        )
    if n is None and jobs is None:
        raise BlastuneError(f"{who}() needs a thread count, 'auto', or jobs=N")


def check_api(api) -> tuple[str, ...]:
    """The library kinds ``api`` names ("blas", "openmp", "all"); one clear error for anything
    else."""
    kinds = APIS.get(api) if isinstance(api, str) else None  # a list is unhashable: not a TypeError
    if kinds is None:
        raise BlastuneError(f"unknown api {api!r}: choose blas, openmp or all")
    return kinds


class limit:
    """Limit BLAS (and/or OpenMP) threads inside a ``with`` block or a decorated function.

    ``limit(1)``, ``limit(jobs=4)`` (usable cores // 4, at least 1), ``limit("auto")`` (a saved
    recommendation for this machine, else the usable cores). ``api`` is "blas", "openmp" or "all".
    ``strict=True`` raises NotControllableError instead of warning when a loaded library cannot
    change its threads at run time. The object is reusable and thread-safe: it keeps no state of
    its own between enter and exit.
    """

    __slots__ = ("n", "kinds", "strict", "pinning")

    def __init__(
        self,
        n=None,
        api: str = "blas",
        *,
        jobs: int | None = None,
        strict: bool = False,
        pin: bool = False,
    ):
        self.kinds = check_api(api)
        _check_counts("limit", "job", n, jobs, pin)
        self.pinning = None
        if pin:  # this process's own CPU set of a jobs=N layout (blastune.control.pinning), once
            from blastune.control.pinning import Pinning

            self.pinning = Pinning(jobs)
            n, jobs = self.pinning.threads(), None
        self.n = _resolve(n, jobs)
        self.strict = strict

    def __enter__(self):
        n, kinds, S = self.n, self.kinds, _S
        owner = _owner()
        with S.lock:
            problems = _refresh() if len(sys.modules) != S.marker else None
            if S.fixed:
                _check_fixed(n, kinds, self.strict)  # may raise: nothing has changed yet
            stack = S.stacks.get(owner)
            if stack is None:
                if not S.stacks:  # the first active limit: remember what to go back to
                    for lib in S.shared:
                        S.originals[lib.path] = S.applied[lib.path] = lib.get()
                stack = S.stacks[owner] = []
            stack.append((n, kinds, self))
            refused = _apply()
            if refused:
                problems = (problems or []) + refused
        if problems:
            try:
                _warn(problems)
            except BaseException:  # a warning turned error (-W error): the with-body never runs
                self.__exit__(None, None, None)
                raise
        if self.pinning is not None:
            self.pinning.enter()
        return self

    def __exit__(self, *exc):
        if self.pinning is not None:
            self.pinning.exit()
        S = _S
        owner = _owner()
        with S.lock:
            stack = S.stacks.get(owner)
            # the usual case: innermost, in the owner that entered
            if stack and stack[-1][2] is self:
                stack.pop()
                if not stack:
                    del S.stacks[owner]
            elif not _remove_elsewhere(self, owner):
                # dropped already (a worker initializer started afresh): nothing to undo
                return False
            problems = _apply()
            if not S.stacks:
                S.originals.clear()
        if problems:
            _warn(problems)
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self:
                return func(*args, **kwargs)

        return wrapper

    def __repr__(self):
        return f"limit({self.n}, api={'all' if len(self.kinds) == 2 else self.kinds[0]!r})"


def _remove_elsewhere(lim: limit, owner) -> bool:
    """Find ``lim``'s entry when the exit runs where the innermost is not it: a generator holding
    ``with limit(1): yield`` finished on another thread or in another task, or exits out of order.
    Look in the exiting owner first, then the latest entry of ``lim`` anywhere (entries of one limit
    object are alike, so which of them goes changes nothing process-wide). Caller holds the lock."""
    order = [owner] if owner in _S.stacks else []
    order += [o for o in reversed(_S.stacks) if o != owner]
    for o in order:
        stack = _S.stacks[o]
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][2] is lim:
                del stack[i]
                break
        else:
            continue
        if not stack:
            del _S.stacks[o]
        return True
    return False


def get_threads(api: str = "blas") -> dict[str, int]:
    """Current thread count of every loaded library that can change it at run time (path ->
    count)."""
    kinds = check_api(api)
    with _S.lock:
        problems = _refresh()
        counts = {lib.path: lib.get() for lib in _S.shared + _S.local if lib.kind in kinds}
    _warn(problems)
    return counts


def set_threads(n: int, api: str = "blas", *, strict: bool = False) -> dict[str, int]:
    """Set the base thread count (what remains when no limit is active); returns the read-back
    counts.

    While limits are active they keep capping; the new count takes over when the last one exits.
    """
    kinds = check_api(api)
    n = _resolve(n, None)
    with _S.lock:
        problems = _refresh()
        _check_fixed(n, kinds, strict, cap=False)
        for lib in _S.shared:
            if lib.kind in kinds:
                if _S.stacks:
                    _S.originals[lib.path] = n
                else:
                    lib.set(n)
                    _S.applied[lib.path] = lib.get()
        tid = threading.get_ident()
        record = _S.local_originals.get(tid)
        for lib in _S.local:
            if lib.kind in kinds:
                if record is not None:  # this thread's limits keep capping; n is its new base
                    record[0][lib.path] = n
                    record[1].add(lib.path)
                else:
                    lib.set(n)
        problems = (problems or []) + (_apply_shared() or [])
        if record is not None:
            problems += _apply_local(tid) or []
    _warn(problems)
    return get_threads(api)


def _initialize_worker(n: int, api: str = "all") -> None:
    from blastune.facts.environment import thread_env

    # A worker is a fresh context: limits inherited through a fork belong to the parent's code.
    _start_fresh()
    # The env vars reach libraries loaded later in this worker and its children; the run-time call
    # reaches those already loaded (a forked worker inherits numpy from its parent).
    os.environ.update(thread_env(n))
    set_threads(n, api=api)


def _initialize_pinned_worker(jobs: int, token: str, api: str = "all") -> None:
    from blastune.control.pinning import Pinning, pin_env

    pinning = Pinning(jobs, token)
    cpuset = pinning.enter()  # for the worker's whole life
    if cpuset is not None:
        os.environ.update(pin_env(cpuset.cpus))
    _initialize_worker(cpuset.threads if cpuset is not None else pinning.threads(), api)


def worker_initializer(
    n: int | None = None, *, jobs: int | None = None, api: str = "all", pin: bool = False
):
    """A picklable initializer:
    ``ProcessPoolExecutor(2, initializer=blastune.worker_initializer(1))``.

    ``jobs=N`` gives each worker usable cores // N threads. The worker starts afresh: limits active
    in the parent when it forked do not follow it, only this count holds there. ``jobs=N, pin=True``
    gives each worker its own CPU set of the N-job layout (``blastune layout --jobs N``) and as many
    threads as it has CPUs.
    """
    check_api(api)  # a bad api fails here, in the parent, not as a BrokenProcessPool later
    _check_counts("worker_initializer", "worker", n, jobs, pin)
    if pin:
        import uuid

        from blastune.control.pinning import plan_layout

        # a layout this machine cannot hold fails here, in the parent, not in every worker
        plan_layout(jobs)
        return functools.partial(_initialize_pinned_worker, jobs, uuid.uuid4().hex, api)
    return functools.partial(_initialize_worker, _resolve(n, jobs), api)
