"""The checks ``blastune doctor`` runs: one small function each, listed in ``CHECKS``.

A check reads a ``Context`` (facts gathered once) and returns findings -- an ``ok`` one when all is
well, so the report shows what was checked. Adding a check means adding a function and a table row.
"""
from __future__ import annotations

import os
import platform
import re

from blastune.facts import coretypes
from blastune.advise.doctor.model import Context, Finding
from blastune.facts.environment import INTEGER_VARS, THREAD_VARS
from blastune.core.counts import positive_ints

# Measured on this project's reference machine: GFLOP/s per core, dot 2000x2000 (see docs/doctor.md).
MEASURED_GFLOPS = {"reference": 2.6, "atlas": 10.0, "openblas": 44.0}


def _name(path: str) -> str:
    return os.path.basename(path)


def _label(ctx: Context, lib) -> str:
    users = ctx.users_of(lib.filepath)
    who = f", called by {' and '.join(users)}" if users else ""
    return f"{lib.vendor} ({_name(lib.filepath)}{who})"


def _threads(n) -> str:
    return "? threads" if not n else f"{n} thread{'s' * (n != 1)}"


_int_values = positive_ints  # '4' -> [4]; OMP_NUM_THREADS may be a nesting list '4,2'


def _per_job(ctx: Context) -> int:
    return max(1, ctx.cpu.usable_cores // ctx.jobs)


def _usable_text(ctx: Context) -> str:
    c = ctx.cpu
    return f"{c.usable_cores} usable core{'s' * (c.usable_cores != 1)} (limited by {c.usable_basis})"


def _thread_counts(ctx: Context) -> list[tuple[str, int]]:
    """Every thread count in play: each loaded library's own, then each thread variable's request."""
    out = [(f"{_label(ctx, lib)} runs {_threads(lib.num_threads)}", lib.num_threads)
           for lib in ctx.loaded if lib.num_threads]
    for var in THREAD_VARS:
        vals = _int_values(ctx.env.get(var))
        if vals:
            out.append((f"{var}={ctx.env[var]}", vals[0]))
    return out


def _blas_threads(ctx: Context) -> tuple[int, str]:
    """The thread count one BLAS call in this environment uses, and where that number came from."""
    libs = [lib for lib in ctx.blas_libs if lib.num_threads]
    if libs:
        lib = max(libs, key=lambda lib: lib.num_threads)
        return lib.num_threads, _label(ctx, lib)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        vals = _int_values(ctx.env.get(var))
        if vals:
            return vals[0], var
    return ctx.cpu.usable_cores, "most BLAS libraries' default of one thread per usable core"


def _fix_threads(n: int, jobs: int | None = None) -> str:
    how = f"--jobs {jobs}" if jobs else f"--threads {n}"
    return f'eval "$(blastune env {how})"  (sets OPENBLAS_NUM_THREADS={n}, OMP_NUM_THREADS={n}, MKL_NUM_THREADS={n}, ...)'


# --- the checks -------------------------------------------------------------------------------------

def check_probe(ctx: Context) -> list[Finding]:
    p = ctx.probe
    cid = "blas-probe"
    if p is None:
        return [Finding(cid, "info", "the BLAS probe was skipped (probe=False)", "")]
    what = "a child python importing numpy and multiplying two 200x200 matrices"
    if p.timed_out:
        return [Finding(cid, "error", f"{what} hung for {p.seconds:.0f} s (stuck at '{p.stage}')",
                        "look for two OpenMP runtimes (blastune info) and retry with OMP_NUM_THREADS=1")]
    if p.crashed:
        num = p.signal_number
        return [Finding(cid, "error", f"{what} was killed by {p.signal} at '{p.stage}' "
                        f"(signal {num}; a shell shows exit status {128 + num})"
                        + (f": {p.stderr_tail}" if p.stderr_tail else ""),
                        _crash_fix(ctx, p.signal))]
    if p.returncode != 0:
        if "No module named 'numpy'" in p.stderr_tail or "No module named numpy" in p.stderr_tail:
            return [Finding(cid, "info", "numpy is not installed for this python: no BLAS to probe",
                            "pip install numpy scipy")]
        fix = ("run it by hand to see the full error: "
               "python -c 'import numpy as np; a = np.ones((200, 200)); a @ a'")
        if "mkl" in p.stderr_tail.lower() and ctx.env.get("MKL_THREADING_LAYER"):
            fix = (f"unset MKL_THREADING_LAYER (it is {ctx.env['MKL_THREADING_LAYER']!r}; "
                   "a TBB layer also needs pip install tbb)")
        return [Finding(cid, "error", f"{what} failed at '{p.stage}' with exit status {p.returncode}: "
                        f"{p.stderr_tail or 'no message'}", fix)]
    if p.wrong_entries:
        return [Finding(cid, "error", f"the BLAS returned wrong results: {p.wrong_entries} of 4 checked entries "
                        "of a 200x200 product differ from a plain-Python sum",
                        "unset OPENBLAS_CORETYPE / MKL_ENABLE_INSTRUCTIONS / MKL_CBWR and reinstall numpy and scipy")]
    return [Finding(cid, "ok", f"{what} ran cleanly in {p.seconds:.1f} s; its results check out", "")]


def _crash_fix(ctx: Context, sig: str | None) -> str:
    if sig == "SIGILL":
        if ctx.env.get("OPENBLAS_CORETYPE"):
            return "unset OPENBLAS_CORETYPE  (it names kernels with instructions this CPU lacks)"
        if ctx.env.get("MKL_ENABLE_INSTRUCTIONS"):
            return "unset MKL_ENABLE_INSTRUCTIONS"
        return ("the BLAS was built for a newer CPU: pip install --force-reinstall numpy scipy "
                "(wheels pick kernels at run time)")
    if sig in ("SIGSEGV", "SIGBUS"):
        return ("try OMP_NUM_THREADS=1 and OMP_STACKSIZE=64M; check blastune info for two OpenMP runtimes "
                "or BLAS copies; python -X faulthandler shows where")
    return "rerun with python -X faulthandler -c 'import numpy as np; a = np.ones((200, 200)); a @ a'"


def check_env_integers(ctx: Context) -> list[Finding]:
    out = []
    for var in INTEGER_VARS:
        value = ctx.env.get(var)
        if value is None:
            continue
        allows_list = var == "OMP_NUM_THREADS"
        vals = _int_values(value)
        # oneMKL reads its own variables strictly: MKL_NUM_THREADS=' 2' runs 1 thread (measured, 2024.2)
        strict = var.startswith("MKL_") and value != value.strip()
        if vals is None or (len(vals) > 1 and not allows_list) or strict:
            out.append(Finding("env-integer", "error",
                               f"{var}={value!r} is not a positive integer: libraries read it each their own "
                               "way -- OpenMP runtimes reject it (one thread per core), OpenBLAS and BLIS take "
                               "its leading digits, oneMKL runs 1 thread",
                               f"export {var}={_per_job(ctx)}   (or unset {var})"))
    if not out:
        set_vars = [v for v in INTEGER_VARS if v in ctx.env]
        text = (f"{', '.join(set_vars)} hold positive integers" if set_vars
                else "no thread-count variable is set")
        out.append(Finding("env-integer", "ok", text, ""))
    return out


def check_jobs(ctx: Context) -> list[Finding]:
    cid, usable = "threads-x-jobs", ctx.cpu.usable_cores
    n, source = _blas_threads(ctx)
    if ctx.jobs == 1:
        return [Finding(cid, "ok", "one job planned (pass --jobs N to check N concurrent jobs)", "")]
    total = n * ctx.jobs
    if ctx.jobs > usable:
        return [Finding(cid, "warning", f"{ctx.jobs} concurrent jobs alone exceed the {_usable_text(ctx)}, "
                        f"and each runs {n} BLAS {_threads(n)[len(str(n)) + 1:]} ({source}): {total} threads",
                        f"run at most {usable} job{'s' * (usable != 1)} at once, 1 thread each: "
                        + _fix_threads(1, ctx.jobs))]
    if total > usable:
        return [Finding(cid, "warning", f"{ctx.jobs} jobs x {n} BLAS threads ({source}) = {total} threads "
                        f"on {_usable_text(ctx)}: oversubscribed",
                        _fix_threads(_per_job(ctx), ctx.jobs))]
    return [Finding(cid, "ok", f"{ctx.jobs} jobs x {n} BLAS threads = {total} fit {_usable_text(ctx)}", "")]


def check_threads_vs_cores(ctx: Context) -> list[Finding]:
    cid, usable = "threads-over-cores", ctx.cpu.usable_cores
    over = [(text, n) for text, n in _thread_counts(ctx) if n > usable]
    if not over:
        return [Finding(cid, "ok", f"no library or variable asks for more threads than the {_usable_text(ctx)}", "")]
    c = ctx.cpu
    why = ""
    if c.usable_cores < c.logical_cores:
        why = f" -- the machine shows {c.logical_cores} cores, but this process may use only {usable}"
    return [Finding(cid, "warning", "; ".join(t for t, _ in over) + f": more than the {_usable_text(ctx)}{why}",
                    _fix_threads(usable))]


def check_smt(ctx: Context) -> list[Finding]:
    cid, c = "threads-over-physical", ctx.cpu
    if not c.smt:
        return [Finding(cid, "ok", f"no SMT: {c.physical_cores} physical cores, {c.logical_cores} logical", "")]
    over = [(t, n) for t, n in _thread_counts(ctx) if c.physical_cores < n <= c.usable_cores]
    if not over:
        return [Finding(cid, "ok", f"no thread count exceeds the {c.physical_cores} physical cores", "")]
    return [Finding(cid, "info", "; ".join(t for t, _ in over) + f": more than the {c.physical_cores} physical "
                    f"cores ({c.logical_cores} logical with SMT); dense BLAS rarely gains from SMT siblings",
                    f"try {_fix_threads(c.physical_cores)} and compare with blastune sweep")]


def check_openmp_runtimes(ctx: Context) -> list[Finding]:
    cid = "openmp-runtimes"
    omp = ctx.omp_libs
    vendors = sorted({lib.vendor for lib in omp})
    listing = ", ".join(f"{lib.vendor} ({lib.filepath})" for lib in omp)
    if len(vendors) > 1:
        return [Finding(cid, "warning", f"{len(vendors)} different OpenMP runtimes are loaded: {listing}; each keeps "
                        "its own thread pool (threads compete; Intel and LLVM document crashes when they mix)",
                        "load one runtime: MKL_THREADING_LAYER=GNU makes MKL use libgomp; with conda take every "
                        "package from conda-forge; do not mix pip wheels that bundle different runtimes")]
    if len(omp) > 1:
        return [Finding(cid, "info", f"{len(omp)} copies of {vendors[0]} are loaded: {listing}; each has its own "
                        "thread pool", "OMP_NUM_THREADS reaches both; blastune.limit() sets both at run time")]
    if omp:
        return [Finding(cid, "ok", f"one OpenMP runtime: {listing}", "")]
    return [Finding(cid, "ok", "no OpenMP runtime loaded", "")]


def check_blas_copies(ctx: Context) -> list[Finding]:
    cid = "blas-copies"
    # LAPACK-only and fixed single-thread libraries have no pool to disagree about
    libs = [lib for lib in ctx.blas_libs if "blas" in lib.api and lib.control != "fixed"]
    if len(libs) < 2:
        return [Finding(cid, "ok", f"{len(libs) or 'no'} thread-pooled BLAS librar{'y' if len(libs) == 1 else 'ies'} loaded", "")]
    counts = {lib.num_threads for lib in libs}
    listing = ", ".join(f"{_label(ctx, lib)}: {_threads(lib.num_threads)}" for lib in libs)
    if len(counts) > 1:
        return [Finding(cid, "warning", f"{len(libs)} BLAS copies with different thread settings -- {listing}; "
                        "a limit set through one copy does not reach the others",
                        "limit them all at once: with blastune.limit(n): ... (or threadpoolctl.threadpool_limits(n))")]
    return [Finding(cid, "info", f"{len(libs)} BLAS copies loaded, each with its own pool -- {listing}",
                    "set limits with blastune.limit(n) or the env vars, which reach every copy")]


def check_slow_blas(ctx: Context) -> list[Finding]:
    cid = "slow-blas"
    out = []
    fast = MEASURED_GFLOPS["openblas"]
    slow = {}  # file -> library; numpy and scipy usually share it
    for b in ctx.bindings:
        if b.api == "blas" and b.library is not None and b.library.vendor in ("reference", "atlas"):
            slow.setdefault(b.library.filepath, b.library)
    for path, lib in slow.items():
        rate = MEASURED_GFLOPS[lib.vendor]
        name = "reference BLAS" if lib.vendor == "reference" else "ATLAS"
        who = " and ".join(ctx.users_of(path)) or "numpy"
        out.append(Finding(cid, "warning",
                           f"{who} call{'s' * (' and ' not in who)} {name} ({path}): dot 2000x2000 ran at "
                           f"{rate:g} GFLOP/s per core against {fast:g} for OpenBLAS ({fast / rate:.0f}x slower) "
                           f"on a 2-core Zen3 (`blastune sweep --op dot` measures it here)"
                           + ("" if lib.num_threads != 1 else ", and it never uses more than 1 thread"),
                           _switch_fix(path)))
    if not out:
        vendors = sorted({b.library.vendor for b in ctx.bindings if b.api == "blas" and b.library})
        return [Finding(cid, "ok", f"numpy/scipy call an optimised BLAS ({', '.join(vendors) or 'none found'})", "")]
    return out


def _switch_fix(path: str) -> str:
    fixes = ["pip install --force-reinstall numpy scipy (wheels bundle OpenBLAS)",
             "conda install -c conda-forge 'libblas=*=*openblas'"]
    m = re.search(r"/usr/lib/([a-z0-9_]+-linux-gnu)/", path)
    if m:
        fixes.append(f"sudo apt install libopenblas0-pthread && sudo update-alternatives --config libblas.so.3-{m.group(1)}")
    return "; or ".join(fixes)


def check_openmp_openblas_env(ctx: Context) -> list[Finding]:
    cid = "openblas-openmp-env"
    libs = [lib for lib in ctx.blas_libs if lib.vendor == "openblas" and lib.threading_layer == "openmp"]
    if not libs:
        return [Finding(cid, "ok", "no OpenMP-built OpenBLAS loaded", "")]
    ob, omp = ctx.env.get("OPENBLAS_NUM_THREADS"), ctx.env.get("OMP_NUM_THREADS")
    lib = libs[0]
    # the count meant by OPENBLAS_NUM_THREADS (a malformed value is env-integer's finding; suggest a sane one)
    meant = (_int_values(ob) or [_per_job(ctx)])[0]
    if ob is not None and omp is None:
        return [Finding(cid, "warning", f"OPENBLAS_NUM_THREADS={ob} is ignored: {_label(ctx, lib)} is built with OpenMP "
                        f"and follows OMP_NUM_THREADS (unset), so it runs {_threads(lib.num_threads)}",
                        f"export OMP_NUM_THREADS={meant}")]
    if _int_values(ob) and omp is not None and _int_values(ob) != (_int_values(omp) or [None])[:1]:
        return [Finding(cid, "info", f"{_label(ctx, lib)} follows OMP_NUM_THREADS={omp}, not OPENBLAS_NUM_THREADS={ob}",
                        f"export OMP_NUM_THREADS={meant} if {meant} was meant")]
    return [Finding(cid, "ok", f"{_label(ctx, lib)} is OpenMP-built and OMP_NUM_THREADS "
                    f"{'is ' + omp if omp else 'is unset (no conflicting OPENBLAS_NUM_THREADS)'}", "")]


def check_blis_default(ctx: Context) -> list[Finding]:
    cid = "blis-default-threads"
    libs = [lib for lib in ctx.blas_libs if lib.vendor == "blis"]
    if not libs:
        return [Finding(cid, "ok", "BLIS not loaded", "")]
    want = _per_job(ctx)
    unset = not any(ctx.env.get(v) for v in ("BLIS_NUM_THREADS", "OMP_NUM_THREADS"))
    lib = libs[0]
    if lib.num_threads == 1 and unset and want > 1:
        return [Finding(cid, "warning", f"{_label(ctx, lib)} runs 1 thread, its default when BLIS_NUM_THREADS and "
                        f"OMP_NUM_THREADS are unset, on {_usable_text(ctx)}",
                        f"export BLIS_NUM_THREADS={want}")]
    return [Finding(cid, "ok", f"{_label(ctx, lib)} runs {lib.num_threads} thread(s) as set", "")]


def check_coretype(ctx: Context) -> list[Finding]:
    cid = "openblas-coretype"
    value = ctx.env.get("OPENBLAS_CORETYPE")
    if value is None:
        return [Finding(cid, "ok", "OPENBLAS_CORETYPE is unset: OpenBLAS picks kernels for this CPU", "")]
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return [Finding(cid, "info", f"OPENBLAS_CORETYPE={value} not checked: the kernel table covers x86-64 only", "")]
    core = coretypes.lookup(value)
    best = coretypes.best_for(ctx.cpu_flags)
    if core is None:
        return [Finding(cid, "warning", f"OPENBLAS_CORETYPE={value!r} is not an OpenBLAS x86-64 kernel name: "
                        "OpenBLAS prints 'Core not found' and detects the CPU itself",
                        "unset OPENBLAS_CORETYPE")]
    missing = coretypes.missing_flags(core, ctx.cpu_flags)
    if missing:
        chosen = {(lib.architecture or "").lower() for lib in ctx.blas_libs if lib.vendor == "openblas"}
        crashed = ctx.probe is not None and ctx.probe.signal == "SIGILL"
        text = (f"OPENBLAS_CORETYPE={value} selects kernels that need {', '.join(missing)}, "
                "which this CPU lacks")
        if crashed:
            return [Finding(cid, "error", text + ": the BLAS probe died with SIGILL", "unset OPENBLAS_CORETYPE")]
        if core.name.lower() in chosen or not chosen:
            return [Finding(cid, "error", text + ": the first matrix product dies with SIGILL",
                            "unset OPENBLAS_CORETYPE")]
        return [Finding(cid, "warning", text + f"; this OpenBLAS build has no such kernel and ran "
                        f"{'/'.join(sorted(c for c in chosen if c))} instead, but a build that has it dies with SIGILL",
                        "unset OPENBLAS_CORETYPE")]
    if best is not None and core.rank < best.rank:
        return [Finding(cid, "warning", f"OPENBLAS_CORETYPE={value} forces older kernels than this CPU runs "
                        f"(it has the instructions for {best.name}: {', '.join(sorted(best.flags))})",
                        "unset OPENBLAS_CORETYPE  (OpenBLAS detects the CPU itself), unless it is pinned "
                        "on purpose for bit-identical results across machines")]
    return [Finding(cid, "ok", f"OPENBLAS_CORETYPE={value} matches what this CPU supports", "")]


# (id, check) in the order the report lists them
CHECKS = (
    ("blas-probe", check_probe),
    ("env-integer", check_env_integers),
    ("openblas-coretype", check_coretype),
    ("threads-x-jobs", check_jobs),
    ("threads-over-cores", check_threads_vs_cores),
    ("threads-over-physical", check_smt),
    ("openmp-runtimes", check_openmp_runtimes),
    ("blas-copies", check_blas_copies),
    ("slow-blas", check_slow_blas),
    ("openblas-openmp-env", check_openmp_openblas_env),
    ("blis-default-threads", check_blis_default),
)
