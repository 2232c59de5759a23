"""Run-time thread limits: ``limit`` (context manager and decorator), ``get_threads``, ``set_threads``,
``worker_initializer``.

Why not just ``threadpoolctl.threadpool_limits``? It rescans every loaded library on each call
(~1 ms), and its OpenBLAS controller obeys only the first thread that set a count, so a limit set
inside a thread-pool worker can silently do nothing. Here the controllers are cached (rescanned only
when new modules were imported), the raw library calls are made directly, and every setting is read
back, so a silent no-op is impossible.

Semantics when several Python threads use ``limit`` at once -- a BLAS thread pool is process-wide:
  * within one thread, the innermost ``limit`` holds (nesting unwinds exactly);
  * across threads, the most restrictive of the threads' innermost limits holds;
  * the counts found before the first limit return when the last active limit exits.
OpenMP runtimes (and OpenMP builds of OpenBLAS) keep their count per calling thread: for those a
limit applies to, and is restored in, the thread that entered it.
"""
from __future__ import annotations

import functools
import os
import sys
import threading
import warnings

from blastune.core.counts import MAX_THREADS, whole_number
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
        self.marker = -1            # len(sys.modules) at the last scan
        self.seen: set[str] = set()
        self.shared: list[_Lib] = []      # run-time controllable, one process-wide count
        self.local: list[_Lib] = []       # run-time controllable, per calling thread
        self.fixed: list[_Lib] = []       # env-only or fixed at build
        self.stacks: dict[int, list] = {}  # thread id -> [(n, kinds), ...] of active limits
        self.originals: dict[str, int] = {}  # counts before the first active limit
        self.applied: dict[str, int] = {}
        self.warned: set[tuple[str, int]] = set()


_S = _State()
_tls = threading.local()


def _after_fork_in_child() -> None:
    """Only the forking thread lives on in a forked child (multiprocessing's default on Linux).

    A lock another thread held at the fork would stay held for ever (the child's next limit would
    hang), and that thread's limits can never exit: start from a fresh lock, keep only this
    thread's limits, and bring the libraries back to what those (or the originals) ask for.
    """
    _S.lock = threading.RLock()
    me = threading.get_ident()
    dead = [tid for tid in _S.stacks if tid != me]
    if not dead:
        return
    for tid in dead:
        del _S.stacks[tid]
    _S.applied.clear()  # another thread may have been half-way through an update
    try:
        _apply_shared()
    except Exception:  # never break a fork; the next limit or set_threads applies again
        pass
    if not _S.stacks:
        _S.originals.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _scan() -> list[_Lib]:
    """Find libraries loaded since the last scan; returns the new run-time-controllable shared ones."""
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


def _warn(problems, stacklevel: int) -> None:
    """Warn only once the state is whole again: under ``-W error`` a warning is an exception."""
    for msg in problems:
        warnings.warn(msg, NotControllableWarning, stacklevel=stacklevel + 1)


def rescan() -> None:
    """Force a rescan (for libraries loaded with ctypes rather than an import)."""
    with _S.lock:
        _S.marker = -1
        problems = _refresh()
    _warn(problems or (), 2)


def _target(kind: str):
    best = None
    for stack in _S.stacks.values():
        for n, kinds in reversed(stack):
            if kind in kinds:
                if best is None or n < best:
                    best = n
                break
    return best


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
                problems.append(f"{lib.vendor} at {lib.path} was asked for {n} threads but reports {got}")
    return problems


def _check_fixed(n: int, kinds, strict: bool, cap: bool = True) -> None:
    """Warn (or raise, strict) for libraries that cannot be brought to ``n`` threads at run time.

    A limit is a cap: a library fixed at 1 thread already obeys ``limit(2)``, so only libraries that
    may run more than ``n`` threads (or an unknown number) are reported. ``set_threads`` asks for
    exactly ``n`` (``cap=False``).
    """
    for lib in _S.fixed:
        info = lib.info
        if lib.kind not in kinds or info.num_threads == n or (cap and info.num_threads is not None
                                                               and info.num_threads <= n):
            continue
        runs = f"{info.num_threads} thread(s)" if info.num_threads is not None else "an unknown number of threads"
        if info.control == "env" and info.control_vars:
            var = info.control_vars[0]
            msg = (f"{info.vendor} ({lib.path}) cannot change its threads at run time: it reads {var} only "
                   f"when the process starts and runs {runs}. Set {var}={n} before the process starts "
                   f"(e.g. `blastune run -t {n} -- CMD`).")
        else:
            msg = (f"{info.vendor} ({lib.path}) has its thread count fixed when it was built and runs {runs}; "
                   f"no call or environment variable changes it. Use a threaded BLAS "
                   f"(OpenBLAS, MKL, BLIS) to run {n} threads.")
        if strict:
            raise NotControllableError(msg)
        if (lib.path, n) not in _S.warned:
            _S.warned.add((lib.path, n))
            warnings.warn(msg, NotControllableWarning, stacklevel=4)


def _resolve(n, jobs) -> int:
    if type(n) is int and jobs is None and 1 <= n <= MAX_THREADS:  # the common case, kept fast
        return n
    if isinstance(n, str) and n == "auto":
        try:
            from blastune.control.profile import auto_threads
        except ImportError:
            auto_threads = None
        if auto_threads is not None:
            return auto_threads(jobs)[0]
        n = None
    if jobs is not None:
        if whole_number(jobs) is None or jobs < 1:
            raise BlastuneError(f"invalid jobs {jobs!r}: must be a whole number >= 1")
        jobs = whole_number(jobs)
        if n is not None:
            raise BlastuneError("give a thread count or jobs=N, not both")
        from blastune.facts.cpu import usable_cores

        return max(1, usable_cores()[0] // jobs)
    count = whole_number(n)  # numpy integers too: counts are often computed with numpy
    if count is None or not 1 <= count <= MAX_THREADS:
        raise BlastuneError(f"invalid thread count {n!r}: must be a whole number >= 1 (at most {MAX_THREADS}), "
                            "'auto', or jobs=N")
    return count


class limit:
    """Limit BLAS (and/or OpenMP) threads inside a ``with`` block or a decorated function.

    ``limit(1)``, ``limit(jobs=4)`` (usable cores // 4, at least 1), ``limit("auto")`` (a saved
    recommendation for this machine, else the usable cores). ``api`` is "blas", "openmp" or "all".
    ``strict=True`` raises NotControllableError instead of warning when a loaded library cannot
    change its threads at run time. The object is reusable and thread-safe: it keeps no state of
    its own between enter and exit.
    """

    __slots__ = ("n", "kinds", "strict")

    def __init__(self, n=None, api: str = "blas", *, jobs: int | None = None, strict: bool = False):
        if api not in APIS:
            raise BlastuneError(f"unknown api {api!r}: choose blas, openmp or all")
        if n is None and jobs is None:
            raise BlastuneError("limit() needs a thread count, 'auto', or jobs=N")
        self.n = _resolve(n, jobs)
        self.kinds = APIS[api]
        self.strict = strict

    def __enter__(self):
        n, kinds, S = self.n, self.kinds, _S
        tid = threading.get_ident()
        with S.lock:
            problems = _refresh() if len(sys.modules) != S.marker else None
            if S.fixed:
                _check_fixed(n, kinds, self.strict)  # may raise: nothing has changed yet
            stack = S.stacks.get(tid)
            if stack is None:
                if not S.stacks:  # the first active limit: remember what to go back to
                    for lib in S.shared:
                        S.originals[lib.path] = S.applied[lib.path] = lib.get()
                stack = S.stacks[tid] = []
            stack.append((n, kinds))
            refused = _apply_shared()
            if refused:
                problems = (problems or []) + refused
        # per-thread runtimes (OpenMP): set in this thread, remember this thread's previous values
        saved = None
        if S.local:
            saved = []
            for lib in S.local:
                if lib.kind in kinds:
                    saved.append((lib, lib.get()))
                    lib.set(n)
                    if lib.get() != n:
                        problems = (problems or []) + [f"{lib.vendor} at {lib.path} did not take {n} threads"]
        try:
            _tls.saved.append(saved)
        except AttributeError:
            _tls.saved = [saved]
        if problems:
            try:
                _warn(problems, 2)
            except BaseException:  # a warning turned error (-W error): the with-body never runs
                self.__exit__(None, None, None)
                raise
        return self

    def __exit__(self, *exc):
        S = _S
        saved = _tls.saved.pop()
        if saved:
            for lib, before in reversed(saved):
                lib.set(before)
        tid = threading.get_ident()
        with S.lock:
            stack = S.stacks[tid]
            stack.pop()
            if not stack:
                del S.stacks[tid]
            problems = _apply_shared()
            if not S.stacks:
                S.originals.clear()
        if problems:
            _warn(problems, 2)
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self:
                return func(*args, **kwargs)

        return wrapper

    def __repr__(self):
        return f"limit({self.n}, api={'all' if len(self.kinds) == 2 else self.kinds[0]!r})"


def get_threads(api: str = "blas") -> dict[str, int]:
    """Current thread count of every loaded library that can change it at run time (path -> count)."""
    kinds = APIS.get(api)
    if kinds is None:
        raise BlastuneError(f"unknown api {api!r}: choose blas, openmp or all")
    with _S.lock:
        problems = _refresh()
        counts = {lib.path: lib.get() for lib in _S.shared + _S.local if lib.kind in kinds}
    _warn(problems or (), 2)
    return counts


def set_threads(n: int, api: str = "blas", *, strict: bool = False) -> dict[str, int]:
    """Set the base thread count (what remains when no limit is active); returns the read-back counts.

    While limits are active they keep capping; the new count takes over when the last one exits.
    """
    kinds = APIS.get(api)
    if kinds is None:
        raise BlastuneError(f"unknown api {api!r}: choose blas, openmp or all")
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
        for lib in _S.local:
            if lib.kind in kinds:
                lib.set(n)
        problems = (problems or []) + (_apply_shared() or [])
    _warn(problems, 2)
    return get_threads(api)


def _initialize_worker(n: int, api: str = "all") -> None:
    from blastune.facts.environment import thread_env

    # The env vars reach libraries loaded later in this worker and its children; the run-time call
    # reaches those already loaded (a forked worker inherits numpy from its parent).
    os.environ.update(thread_env(n))
    set_threads(n, api=api)


def worker_initializer(n: int | None = None, *, jobs: int | None = None, api: str = "all"):
    """A picklable initializer: ``ProcessPoolExecutor(2, initializer=blastune.worker_initializer(1))``.

    ``jobs=N`` gives each worker usable cores // N threads.
    """
    return functools.partial(_initialize_worker, _resolve(n, jobs), api)
