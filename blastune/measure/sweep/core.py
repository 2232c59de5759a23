"""``blastune.sweep()``: time BLAS/LAPACK ops (and non-BLAS contrast ops) across sizes and thread counts.

The driver plans a grid (ops x sizes x dtypes x threads), refuses points that would not fit in memory
before allocating anything, and times each point with ``blastune.measure.timing.measure``. Thread counts are
set with ``blastune.limit`` and read back with ``get_threads``; where the library serving the op
cannot change threads at run time (Debian's BLIS/ATLAS/reference, an OpenMP build called from a
non-main thread) -- or the read-back disagrees -- each thread count runs in a fresh worker process
whose environment has the thread variables set before numpy is imported (as pyperf runs workers),
and those points say ``isolated: true``.

Results are a "blastune.sweep/1" document (see docs/sweep.md), rewritten atomically after every
point, so Ctrl-C or a crash loses only the point in flight.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from blastune.errors import BlastuneError, NotControllableWarning
from blastune.measure.ops import DEFAULT_SEED, OPS, check_dtype, check_lib, get_op, parse_ops

SCHEMA = "blastune.sweep/1"
MAX_THREADS = 1024
DEFAULT_BUDGET = 60.0
DEFAULT_MIN_REPEATS = 5
DEFAULT_TARGET_SPREAD = 0.02
KEY_FIELDS = ("op", "lib", "size", "dtype", "threads")
# other processes using this many cores' worth of CPU during a point make it 'busy' (see cpuload.py)
BUSY_CORES = 0.25


def default_threads(usable: int) -> list[int]:
    """1, 2, 4, ... up to the usable cores, and the usable cores themselves."""
    out, t = [], 1
    while t <= usable:
        out.append(t)
        t *= 2
    if usable not in out:
        out.append(usable)
    return out


def point_key(p: dict) -> tuple:
    return tuple(p[k] for k in KEY_FIELDS)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.3g} GiB" if nbytes >= 2**27 else f"{nbytes / 2**20:.3g} MiB"


# --- planning ---------------------------------------------------------------------------------------

@dataclass
class Plan:
    ops: list[str]
    sizes: list[int]
    threads: list[int]
    dtypes: list[str]
    lib: str
    specs: list[tuple[str, int, str]]        # (op, size, dtype) in run order
    skipped: list[str] = field(default_factory=list)  # combinations `all` implied but an op cannot do

    @property
    def total(self) -> int:
        return len(self.specs) * len(self.threads)


def check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise BlastuneError(f"invalid size {size!r}: must be a whole number >= 1 (the matrix order n)")
    return size


def check_memory(op_name: str, size: int, dtype: str) -> int:
    """Refuse, before allocating, a point whose arrays would not fit in the memory we may still use."""
    from blastune.facts.cpu import available_memory

    need = get_op(op_name).memory_bytes(size, dtype)
    avail, source = available_memory()
    if avail is not None and need > avail:
        raise BlastuneError(f"{op_name} at size {size} ({dtype}) needs about {_gib(need)} of memory but only "
                            f"{_gib(avail)} is available ({source}): choose a smaller --size")
    return need


def make_plan(ops="dot", sizes=(1000,), threads=None, dtypes=("float64",), lib="numpy") -> Plan:
    """Validate the grid and order it; every problem is one BlastuneError naming what is allowed."""
    from blastune.facts.cpu import usable_cores

    given = [ops] if isinstance(ops, str) else list(ops)
    op_names = parse_ops(given)
    # with `all`, skip the dtypes an op cannot take; when named, asking for them is an error
    explicit = "all" not in {part for g in given for part in str(g).replace(" ", "").split(",")}
    sizes = list(dict.fromkeys(check_size(s) for s in ([sizes] if isinstance(sizes, int) else sizes)))
    if not sizes:
        raise BlastuneError("no size given: pass --size N (the matrix order), e.g. --size 1000")
    dtypes = list(dict.fromkeys(check_dtype(None, d) for d in ([dtypes] if isinstance(dtypes, str) else dtypes)))
    check_lib(lib)
    needs_scipy = lib == "scipy" or "norm_isf" in op_names
    if needs_scipy:
        try:
            import scipy.linalg  # noqa: F401
            import scipy.stats  # noqa: F401
        except ImportError as exc:
            raise BlastuneError(f"scipy is not importable ({exc}): install scipy, or use --lib numpy "
                                "without norm_isf") from None
    if threads is None:
        threads = default_threads(usable_cores()[0])
    threads = [threads] if isinstance(threads, int) else list(threads)
    for t in threads:
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise BlastuneError(f"invalid thread count {t!r}: must be a whole number >= 1")
        if t > MAX_THREADS:
            raise BlastuneError(f"invalid thread count {t}: must be <= {MAX_THREADS}")
    if not threads:
        raise BlastuneError("no thread count given")
    threads = sorted(dict.fromkeys(threads))
    specs, skipped = [], []
    for name in op_names:
        op = OPS[name]
        for d in dtypes:
            if d not in op.dtypes:
                if explicit:
                    check_dtype(op, d)  # raises: the user asked for exactly this
                skipped.append(f"{name} {d}")
                continue
            for n in sizes:
                check_memory(name, n, d)
                specs.append((name, n, d))
    if not specs:
        raise BlastuneError("nothing to run: no op takes the dtypes given")
    return Plan(op_names, sizes, threads, dtypes, lib, specs, skipped)


# --- which library serves the op, and can we change its threads here? -------------------------------

def serving_libraries(lib: str, facts=None) -> dict:
    """{'blas': LibraryInfo-dict, 'lapack': ...} for the package that runs the ops."""
    from blastune.facts.info import info

    facts = facts or info()
    out = {}
    for api in ("blas", "lapack"):
        b = facts.binding(lib, api)
        out[api] = b.library.to_dict() if b is not None and b.library is not None else None
    return out


def needs_workers(served: dict) -> tuple[bool, str]:
    """True when thread counts must be set before the library starts (a fresh process per count)."""
    for api, lib in served.items():
        if lib is None:
            continue
        if lib["control"] == "env":
            return True, f"{lib['vendor']} ({api}) reads its thread count only at start-up"
        if lib["control"] != "runtime":
            return True, (f"{lib['vendor']} ({api}) has its thread count fixed when it was built; each count "
                          "still ran in a fresh process, and 'ran N thread(s)' shows what it really used")
        if lib.get("per_thread") and threading.current_thread() is not threading.main_thread():
            return True, f"{lib['vendor']} keeps threads per calling thread and the sweep is not on the main thread"
    return False, "run-time control"


def _files(served: dict) -> list[str]:
    return sorted({lib["filepath"] for lib in served.values() if lib})


# --- derived figures -------------------------------------------------------------------------------

def _peak(cpu: dict, dtype: str, threads: int) -> float | None:
    per_core = cpu.get("peak_gflops_per_core")
    if not per_core:
        return None
    # cpu_info gives the FP64 peak; single precision packs twice the lanes into the same SIMD registers
    factor = 2 if dtype in ("float32", "complex64") else 1
    # threads beyond the usable cores add no arithmetic units
    return per_core * factor * min(threads, cpu.get("usable_cores") or threads)


def ran_as_asked(p: dict) -> bool:
    """Did the library run the thread count the point asked for (or is that unknown)?"""
    return p.get("threads_ran") is None or p["threads_ran"] == p["threads"]


def _best(pts: list[dict]) -> dict:
    """The fewest threads whose median is within noise of the fastest: threads that buy nothing
    measurable are better left to other jobs. Noise = 2%, or twice the larger spread of the two points.
    A count the library did not run (ATLAS asked for 2 runs 1) cannot be the best count: any gain it
    shows is noise."""
    pts = [p for p in pts if ran_as_asked(p)] or [min(pts, key=lambda p: p["threads"])]
    fastest = min(pts, key=lambda p: p["median_s"])
    for p in sorted(pts, key=lambda p: p["threads"]):
        tol = max(0.02, 2 * max(p.get("spread") or 0, fastest.get("spread") or 0))
        if p["median_s"] <= fastest["median_s"] * (1 + tol):
            return p
    return fastest


def annotate(data: dict) -> None:
    """Fill speed-up over 1 thread, efficiency, GFLOP/s, % of nominal peak and the best thread count."""
    cpu = data.get("cpu") or {}
    usable = cpu.get("usable_cores")
    groups: dict[tuple, list[dict]] = {}
    for p in data["points"]:
        # the thread count the BLAS itself reported (LAPACK may be a separate, single-threaded file)
        blas = ((data.get("libraries") or {}).get(p["lib"]) or {}).get("blas") or {}
        ran = (p.get("threads_seen") or {}).get(blas.get("filepath"))
        p["threads_ran"] = ran if isinstance(ran, int) and not isinstance(ran, bool) and ran > 0 else None
        groups.setdefault((p["op"], p["lib"], p["size"], p["dtype"]), []).append(p)
    for pts in groups.values():
        base = next((p for p in pts if p["threads"] == 1), None)
        # BLAS threads cannot speed up an op BLAS does not run (add, sin, norm_isf): any difference is
        # noise, so the fewest threads is the honest "best" there
        best = _best(pts) if pts[0].get("blas_op", True) else min(pts, key=lambda p: p["threads"])
        for p in pts:
            # the threads that really ran: ATLAS asked for 2 and running 1 is judged as 1 thread
            ran = p["threads_ran"] or p["threads"]
            p["gflops"] = p["flops"] / p["median_s"] / 1e9 if p.get("flops") and p["median_s"] > 0 else None
            peak = _peak(cpu, p["dtype"], ran)
            p["peak_pct"] = 100 * p["gflops"] / peak if p["gflops"] and peak else None
            p["speedup"] = base["median_s"] / p["median_s"] if base and p["median_s"] > 0 else None
            p["efficiency"] = p["speedup"] / ran if p["speedup"] is not None else None
            if usable:
                p["oversubscribed"] = ran > usable
            p["best"] = p is best and len(pts) > 1  # "best" needs something to compare with
    data["points"].sort(key=lambda p: (list(OPS).index(p["op"]) if p["op"] in OPS else 99,
                                       p["lib"], p["dtype"], p["size"], p["threads"]))


# --- the result document -----------------------------------------------------------------------------

@dataclass
class SweepResult:
    data: dict

    @property
    def points(self) -> list[dict]:
        return self.data["points"]

    def best(self) -> list[dict]:
        """The best thread count (fewest within noise of the fastest) per (op, lib, size, dtype) measured
        at more than one count."""
        return [{k: p[k] for k in (*KEY_FIELDS, "median_s", "speedup", "efficiency", "unstable", "busy")}
                for p in self.points if p.get("best")]

    def to_dict(self) -> dict:
        return self.data


def _new_document(plan: Plan, settings: dict, served: dict, worker_reason: str | None) -> dict:
    from blastune import __version__
    from blastune.facts.cpu import cpu_info
    from blastune.facts.fingerprint import fingerprint

    cpu = cpu_info()
    return {
        "schema": SCHEMA,
        "blastune_version": __version__,
        "created": _now(),
        "updated": _now(),
        "status": "running",
        "fingerprint": fingerprint(cpu),
        "cpu": {"model": cpu.model, "usable_cores": cpu.usable_cores, "simd": cpu.simd,
                "peak_gflops_per_core": cpu.peak_gflops_per_core, "peak_basis": cpu.peak_basis},
        "python": sys.version.split()[0],
        "libraries": {plan.lib: served},
        "isolation": worker_reason,
        "settings": settings,
        "grid": {"ops": plan.ops, "sizes": plan.sizes, "threads": plan.threads, "dtypes": plan.dtypes,
                 "lib": plan.lib},
        "skipped": plan.skipped,
        "points": [],
        "warnings": [],
    }


_POINT_TYPES = {"op": str, "lib": str, "size": int, "dtype": str, "threads": int}


def check_document(data: dict) -> dict:
    """Refuse, in one line, a sweep document whose structure this code would trip over (a hand-edited
    or truncated-then-repaired file): every reader (resume, compare, recommend) relies on it."""
    def bad(what):
        raise BlastuneError(f"malformed sweep results file ({what})")

    for key in ("fingerprint", "grid", "cpu", "libraries"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            bad(f"'{key}' is not an object")
    if not isinstance(data.get("points"), list):
        bad("no 'points' list")
    for i, p in enumerate(data["points"]):
        if not isinstance(p, dict):
            bad(f"point {i} is not an object")
        for key, kind in _POINT_TYPES.items():
            v = p.get(key)
            if not isinstance(v, kind) or isinstance(v, bool) or (kind is int and v < 1):
                bad(f"point {i} has no valid '{key}'")
        m = p.get("median_s")
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not m > 0:
            bad(f"point {i} has no valid 'median_s'")
        for key in ("flops", "spread"):  # optional, but used in arithmetic
            if p.get(key) is not None and (isinstance(p[key], bool) or not isinstance(p[key], (int, float))):
                bad(f"point {i} has a non-numeric '{key}'")
        if p.get("threads_seen") is not None and not isinstance(p["threads_seen"], dict):
            bad(f"point {i}: 'threads_seen' is not an object")
    return data


def load_sweep(path) -> dict:
    """A blastune.sweep/1 file, checked: missing, corrupt, foreign or malformed is one BlastuneError."""
    from blastune.documents.load import load_results

    data = load_results(path, "sweep", 1)
    try:
        return check_document(data)
    except BlastuneError as exc:
        raise BlastuneError(f"{path}: {exc}") from None


def fingerprint_differences(old: dict | None, new: dict) -> str:
    """What differs between two fingerprints, in words ("usable_cores 4, here 2")."""
    old = old if isinstance(old, dict) else {}
    keys = ("cpu_model", "machine", "simd", "usable_cores", "libraries")
    diffs = [f"{k} {old.get(k)!r}, here {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
    return "; ".join(diffs) or f"fingerprint {old.get('id')}, here {new.get('id')}"


def _resume_document(path: Path, fresh: dict) -> dict:
    old = load_sweep(path)
    if (old.get("fingerprint") or {}).get("id") != fresh["fingerprint"]["id"]:
        raise BlastuneError(f"{path} was measured on another machine or BLAS "
                            f"({fingerprint_differences(old.get('fingerprint'), fresh['fingerprint'])}): "
                            "pass --force to start over, or use another --out")
    doc = dict(fresh)
    doc["created"] = old.get("created", fresh["created"])
    doc["points"] = old["points"]
    doc["libraries"] = {**(old.get("libraries") or {}), **fresh["libraries"]}
    grid = old.get("grid") or {}
    for k in ("ops", "sizes", "threads", "dtypes"):
        before = grid.get(k) if isinstance(grid.get(k), list) else []
        before = [v for v in before if isinstance(v, (int, str))]
        doc["grid"][k] = list(dict.fromkeys(before + fresh["grid"][k]))
    doc["resumed"] = (old["resumed"] if isinstance(old.get("resumed"), int) else 0) + 1
    return doc


# --- measuring one point ------------------------------------------------------------------------------

def _point_record(op_name, lib, size, dtype, threads, prepared_impl, measurement, *, isolated, threads_seen,
                  usable, other_cores=None) -> dict:
    op = OPS[op_name]
    st = measurement.stats
    # too short a point cannot tell: /proc/stat counts in 10 ms ticks
    busy = other_cores is not None and measurement.elapsed_s >= 0.5 and other_cores >= BUSY_CORES
    return {
        "op": op_name, "lib": lib, "size": size, "dtype": dtype, "threads": threads,
        "impl": prepared_impl, "blas_op": op.blas,
        "isolated": isolated, "threads_seen": threads_seen, "oversubscribed": threads > usable,
        "flops": op.flops(size, dtype, lib), "flops_nominal": op.nominal,
        "memory_bytes": op.memory_bytes(size, dtype),
        "median_s": st.median, "q1_s": st.q1, "q3_s": st.q3, "iqr_s": st.iqr, "min_s": st.min,
        "max_s": st.max, "mean_s": st.mean, "spread": st.spread, "repeats": st.repeats,
        "loops": measurement.loops, "warmup_s": measurement.warmup_s, "elapsed_s": measurement.elapsed_s,
        "stop": measurement.stop, "unstable": measurement.unstable, "samples_s": measurement.samples,
        "other_load_cores": None if other_cores is None else round(other_cores, 2), "busy": busy,
        "measured": _now(),
    }


def _verify(files: list[str], threads: int) -> tuple[bool, dict]:
    from blastune.control.limits import get_threads

    got = get_threads("all")
    seen = {f: got.get(f) for f in files}
    if not seen:  # the serving library was not identified: nothing to read back, nothing to defer
        return True, seen
    return all(v == threads for v in seen.values()), seen


def _run_inprocess(specs_todo, doc, settings, budget_left, on_point, save, usable, files):
    """Measure (op, size, dtype) x threads in this process; returns points whose read-back failed."""
    from blastune.measure.load import LoadProbe
    from blastune.control.limits import limit
    from blastune.measure.timing import measure

    deferred = []
    lib = doc["grid"]["lib"]
    for op_name, size, dtype, thread_list in specs_todo:
        check_memory(op_name, size, dtype)
        prepared = OPS[op_name].prepare(size, dtype, lib, settings["seed"])
        for t in thread_list:
            on_point("start", {"op": op_name, "size": size, "dtype": dtype, "threads": t})
            with warnings.catch_warnings():
                # the sweep reads the count back itself (and measures a refused one in a worker): the
                # limiter's warning would only repeat that as a Python warning with a source line
                warnings.simplefilter("ignore", NotControllableWarning)
                with limit(t, api="all"):
                    ok, seen = _verify(files, t)
                    if not ok:
                        deferred.append((op_name, size, dtype, t))
                        continue
                    probe = LoadProbe()
                    m = measure(prepared.fn, prepared.args, target_spread=settings["target_spread"],
                                min_repeats=settings["min_repeats"], budget=budget_left())
                    rec = _point_record(op_name, lib, size, dtype, t, prepared.impl, m, isolated=False,
                                        threads_seen=seen, usable=usable, other_cores=probe.other_cores())
                    save(rec)
                    on_point("done", rec)  # still inside the limit: an interrupt here must restore it too
        del prepared
    return deferred


def _run_worker(threads, specs, doc, settings, budget, on_point, save):
    """One fresh process for one thread count: env vars set before numpy is imported."""
    from blastune.facts.environment import thread_env

    env = dict(os.environ)
    env.update(thread_env(threads))
    # the worker must import this very blastune, even when it was put on sys.path by hand
    pkg_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
    job = {"threads": threads, "lib": doc["grid"]["lib"], "specs": specs, "budget": budget,
           "settings": settings, "usable": doc["cpu"]["usable_cores"]}
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "blastune.measure.sweep.worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, env=env, text=True)
        try:
            proc.stdin.write(json.dumps(job))
            proc.stdin.close()
            for line in proc.stdout:
                if not line.startswith("{"):
                    continue  # not ours: a library that printed to file descriptor 1 itself
                msg = json.loads(line)
                if "start" in msg:
                    on_point("start", msg["start"])
                elif "point" in msg:
                    save(msg["point"])
                    on_point("done", msg["point"])
                elif "error" in msg:
                    proc.wait()
                    raise BlastuneError(msg["error"])
            rc = proc.wait()
        except BaseException:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            raise
        if rc != 0:
            err.seek(0)
            tail = err.read().strip().splitlines()[-1:] or ["no message"]
            raise BlastuneError(f"the worker for {threads} thread(s) failed (exit {rc}): {tail[0]}")


# --- the driver ---------------------------------------------------------------------------------------

def sweep(ops="dot", sizes=(1000,), threads=None, dtypes=("float64",), lib="numpy", *,
          budget: float = DEFAULT_BUDGET, min_repeats: int = DEFAULT_MIN_REPEATS,
          target_spread: float = DEFAULT_TARGET_SPREAD, out=None, force: bool = False, resume: bool = False,
          isolate: str = "auto", seed: int = DEFAULT_SEED, on_point=None) -> SweepResult:
    """Run the grid and return (and, with ``out``, save after every point) a blastune.sweep/1 document.

    ``isolate``: "auto" (workers only where threads cannot change at run time), "always", "never".
    ``on_point(event, data)`` is called with ("plan", {"total": N}), ("start", point-spec) and
    ("done", point-record) -- the CLI drives its progress bar from it.
    On KeyboardInterrupt the document is saved with status "interrupted" and the interrupt re-raised.
    """
    from blastune.core.files import atomic_write_json, check_writable_new

    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget < float("inf"):
        # inf would also be written to the results as Infinity, which is not JSON
        raise BlastuneError(f"invalid budget {budget!r}: must be a finite number of seconds > 0")
    from blastune.measure.timing import MAX_REPEATS

    if isinstance(min_repeats, bool) or not isinstance(min_repeats, int) or not 1 <= min_repeats <= MAX_REPEATS:
        raise BlastuneError(f"invalid min repeats {min_repeats!r}: must be a whole number from 1 to {MAX_REPEATS}")
    if not (isinstance(target_spread, (int, float)) and 0 < target_spread < 1):
        raise BlastuneError(f"invalid target spread {target_spread!r}: must be a fraction between 0 and 1, e.g. 0.02")
    if isolate not in ("auto", "always", "never"):
        raise BlastuneError(f"invalid isolate {isolate!r}: choose auto, always or never")
    plan = make_plan(ops, sizes, threads, dtypes, lib)
    out = Path(out) if out is not None else None
    if out is not None:
        from blastune.core.files import check_output_path

        check_writable_new(out, force=force, resume=resume)
        check_output_path(out, "--out")
    on_point = on_point or (lambda event, data: None)

    served = serving_libraries(plan.lib)
    workers, reason = needs_workers(served)
    if isolate == "always":
        workers, reason = True, "asked for (--isolate)"
    elif isolate == "never":
        workers = False
    settings = {"budget_s": budget, "min_repeats": min_repeats, "target_spread": target_spread, "seed": seed,
                "isolate": isolate, "timer": "time.perf_counter", "warmups": 1}
    doc = _new_document(plan, settings, served, reason if workers else None)
    if out is not None and resume and out.exists():
        doc = _resume_document(out, doc)
    if not _files(served):
        doc["warnings"].append(f"could not identify the BLAS {plan.lib} calls: thread counts were set but "
                               "not read back")
    done = {point_key(p) for p in doc["points"]}
    usable = doc["cpu"]["usable_cores"]

    todo = [(o, n, d, t) for (o, n, d) in plan.specs for t in plan.threads
            if (o, plan.lib, n, d, t) not in done]
    on_point("plan", {"total": len(todo), "already_done": plan.total - len(todo), "budget_s": budget})
    start = time.perf_counter()
    finished = [0]

    def budget_left() -> float:
        # the sweep's budget shared evenly among the points still to run
        left = budget - (time.perf_counter() - start)
        return max(0.0, left) / max(1, len(todo) - finished[0])

    def write():
        doc["updated"] = _now()
        annotate(doc)
        if out is not None:
            try:
                atomic_write_json(out, doc)
            except OSError as exc:
                raise BlastuneError(f"cannot write {out}: {exc.strerror or exc}") from None

    def save(rec):
        doc["points"] = [p for p in doc["points"] if point_key(p) != point_key(rec)] + [rec]
        finished[0] += 1
        write()

    def run_in_workers(points):
        # one fresh process per thread count, given its points' share of the budget left
        by_threads: dict[int, list] = {}
        for o, n, d, t in points:
            by_threads.setdefault(t, []).append([o, n, d])
        for t, specs in by_threads.items():
            _run_worker(t, specs, doc, settings, budget_left() * len(specs), on_point, save)

    try:
        write()  # fail early if --out cannot be written, and mark the file as in progress
        if workers:
            run_in_workers(todo)
        else:
            grouped: dict[tuple, list[int]] = {}
            for o, n, d, t in todo:
                grouped.setdefault((o, n, d), []).append(t)
            deferred = _run_inprocess([(*k, v) for k, v in grouped.items()], doc, settings, budget_left,
                                      on_point, save, usable, _files(served))
            if deferred:
                doc["isolation"] = "the library did not report the thread counts it was given; measured in workers"
                doc["warnings"].append(doc["isolation"])
                run_in_workers(deferred)
    except KeyboardInterrupt:
        doc["status"] = "interrupted"
        write()
        raise
    except BaseException:
        doc["status"] = "failed"
        write()
        raise
    unstable = [p for p in doc["points"] if p.get("unstable")]
    if unstable:
        doc["warnings"].append(f"{len(unstable)} point(s) stayed above the {target_spread * 100:g}% spread target "
                               "within the budget (flagged 'unstable'): raise --budget or quiet the machine")
    over = [p for p in doc["points"] if p.get("oversubscribed")]
    if over:  # judged by the threads that ran: ATLAS asked for 4 runs 1 and oversubscribes nothing
        doc["warnings"].append(f"{len(over)} point(s) ran more threads than the {usable} usable cores "
                               "(flagged 'oversubscribed'): they compete for cores with each other")
    busy = [p for p in doc["points"] if p.get("busy")]
    if busy:
        doc["warnings"].append(f"{len(busy)} point(s) ran while other processes used >= {BUSY_CORES} cores "
                               "(flagged 'busy'): their times, multi-thread ones most, are pessimistic; "
                               "rerun them on a quiet machine")
    doc["status"] = "complete"
    write()
    return SweepResult(doc)
