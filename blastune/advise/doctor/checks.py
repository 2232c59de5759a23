"""The general checks ``blastune doctor`` runs, in report order (what a check is: ``registry.py``;
the big-machine checks: ``topology_checks.py``). Vendor-specific advice lives with the vendor
(``Family.doctor_check`` / ``Family.advise`` in ``blastune/libraries``); the report places those
checks where ``family_checks_here()`` is called. Adding a check means adding one decorated function.
"""

from __future__ import annotations

import re

from blastune.advise.doctor.model import Context
from blastune.advise.doctor.probe import PROBE_SIZE
from blastune.advise.doctor.registry import check, family_checks_here
from blastune.core.counts import positive_ints
from blastune.facts import coretypes
from blastune.facts.environment import integer_vars, list_vars, strict_vars, thread_vars
from blastune.facts.info import library_label, library_users, pool_disagreement
from blastune.documents.doctor import Finding
from blastune.libraries import BLAS_FAMILIES


# --- the phrases findings share ------------------------------------------------------------------


def count(n: int | None, word: str) -> str:
    """'1 thread', '4 threads'; '? threads' for a count nobody knows."""
    return f"{n or '?'} {word}{'s' * (n != 1)}"


def env_command(args: str) -> str:
    """The fix that sets the thread variables: ``blastune env`` evaluated by the shell."""
    return f'eval "$(blastune env {args})"'


def jobs_x_threads(ctx: Context, n: int, source: str = "") -> str:
    """'3 jobs x 2 BLAS threads (OMP_NUM_THREADS=2) = 6': the threads the planned jobs start."""
    return f"{ctx.jobs} jobs x {n} BLAS threads{f' ({source})' if source else ''} = {n * ctx.jobs}"


ONE_JOB = "one job planned (pass --jobs N to check N concurrent jobs)"

# the probe's matrix product, for a user to run by hand
PRODUCT = f"'import numpy as np; a = np.ones(({PROBE_SIZE}, {PROBE_SIZE})); a @ a'"


def _usable_text(ctx: Context) -> str:
    return f"{count(ctx.usable_cores, 'usable core')} (limited by {ctx.usable_basis})"


def _thread_counts(ctx: Context) -> list[tuple[str, int]]:
    """Every thread count in play: each loaded library's own (not on a captured tree: they describe
    this machine), then each thread variable's request."""
    out = [
        (f"{ctx.label(lib)} runs {count(lib.num_threads, 'thread')}", lib.num_threads)
        for lib in ctx.loaded
        if lib.num_threads and not ctx.captured
    ]
    for var in thread_vars():
        vals = positive_ints(ctx.env.get(var))
        if vals:
            out.append((f"{var}={ctx.env[var]}", vals[0]))
    return out


def _fix_threads(n: int, jobs: int | None = None) -> str:
    how = f"--jobs {jobs}" if jobs else f"--threads {n}"
    sets = ", ".join(f"{v}={n}" for v in thread_vars()[:3])
    return f"{env_command(how)}  (sets {sets}, ...)"


# --- the checks ---------------------------------------------------------------------------------


@check("blas-probe")
def check_probe(ctx: Context) -> Finding:
    p = ctx.probe
    if p is None:
        return Finding("info", "the BLAS probe was skipped (probe=False)")
    what = f"a child python importing numpy and multiplying two {PROBE_SIZE}x{PROBE_SIZE} matrices"
    if p.timed_out:
        return Finding(
            "error",
            f"{what} hung for {p.seconds:.0f} s (stuck at '{p.stage}')",
            "look for two OpenMP runtimes (blastune info) and retry with one thread: "
            + env_command("--threads 1"),
        )
    if p.crashed:
        num = p.signal_number
        return Finding(
            "error",
            f"{what} was killed by {p.signal} at '{p.stage}' "
            f"(signal {num}; a shell shows exit status {128 + num})"
            + (f": {p.stderr_tail}" if p.stderr_tail else ""),
            _crash_fix(ctx, p.signal),
        )
    if p.returncode != 0:
        if "No module named 'numpy'" in p.stderr_tail or "No module named numpy" in p.stderr_tail:
            return Finding(
                "info",
                "numpy is not installed for this python: no BLAS to probe",
                "pip install numpy scipy",
            )
        fix = f"run it by hand to see the full error: python -c {PRODUCT}"
        if "mkl" in p.stderr_tail.lower() and ctx.env.get("MKL_THREADING_LAYER"):
            fix = (
                f"unset MKL_THREADING_LAYER (it is {ctx.env['MKL_THREADING_LAYER']!r}; "
                "a TBB layer also needs pip install tbb)"
            )
        return Finding(
            "error",
            f"{what} failed at '{p.stage}' with exit status {p.returncode}: "
            f"{p.stderr_tail or 'no message'}",
            fix,
        )
    if p.wrong_entries:
        return Finding(
            "error",
            f"the BLAS returned wrong results: {p.wrong_entries} of 4 checked entries "
            f"of a {PROBE_SIZE}x{PROBE_SIZE} product differ from a plain-Python sum",
            "unset OPENBLAS_CORETYPE / MKL_ENABLE_INSTRUCTIONS / MKL_CBWR and reinstall numpy "
            "and scipy",
        )
    return Finding("ok", f"{what} ran cleanly in {p.seconds:.1f} s; its results check out")


def _crash_fix(ctx: Context, sig: str | None) -> str:
    if sig == "SIGILL":
        if ctx.env.get("OPENBLAS_CORETYPE"):
            return "unset OPENBLAS_CORETYPE  (it names kernels with instructions this CPU lacks)"
        if ctx.env.get("MKL_ENABLE_INSTRUCTIONS"):
            return "unset MKL_ENABLE_INSTRUCTIONS"
        return (
            "the BLAS was built for a newer CPU: pip install --force-reinstall numpy scipy "
            "(wheels pick kernels at run time)"
        )
    if sig in ("SIGSEGV", "SIGBUS"):
        return (
            f"try {env_command('--threads 1')} and OMP_STACKSIZE=64M; check blastune info "
            "for two OpenMP runtimes or BLAS copies; python -X faulthandler shows where"
        )
    return f"rerun with python -X faulthandler -c {PRODUCT}"


@check("env-integer")
def check_env_integers(ctx: Context) -> list[Finding]:
    out = []
    for var in integer_vars():
        value = ctx.env.get(var)
        if value is None:
            continue
        vals = positive_ints(value)
        # some libraries read their variables strictly (Family.strict_vars): ' 2' is not 2 there
        strict = var in strict_vars() and value != value.strip()
        if vals is None or (len(vals) > 1 and var not in list_vars()) or strict:
            out.append(
                Finding(
                    "error",
                    f"{var}={value!r} is not a positive integer: libraries read it each their own "
                    "way -- OpenMP runtimes reject it (one thread per core), OpenBLAS and BLIS "
                    "take its leading digits, oneMKL runs 1 thread",
                    f"export {var}={ctx.fair_share}   (or unset {var})",
                )
            )
    if not out:
        set_vars = [v for v in integer_vars() if v in ctx.env]
        text = (
            f"{', '.join(set_vars)} hold positive integers"
            if set_vars
            else "no thread-count variable is set"
        )
        out.append(Finding("ok", text))
    return out


@check("openblas-coretype")
def check_coretype(ctx: Context) -> Finding:
    value = ctx.env.get("OPENBLAS_CORETYPE")
    if value is None:
        return Finding("ok", "OPENBLAS_CORETYPE is unset: OpenBLAS picks kernels for this CPU")
    if ctx.cpu.machine.lower() not in ("x86_64", "amd64"):
        return Finding(
            "info", f"OPENBLAS_CORETYPE={value} not checked: the kernel table covers x86-64 only"
        )
    core = coretypes.lookup(value)
    best = coretypes.best_for(ctx.cpu_flags)
    unset = "unset OPENBLAS_CORETYPE"
    if core is None:
        return Finding(
            "warning",
            f"OPENBLAS_CORETYPE={value!r} is not an OpenBLAS x86-64 kernel name: "
            "OpenBLAS prints 'Core not found' and detects the CPU itself",
            unset,
        )
    missing = coretypes.missing_flags(core, ctx.cpu_flags)
    if missing:
        chosen = {
            (lib.architecture or "").lower() for lib in ctx.blas_libs if lib.vendor == "openblas"
        }
        crashed = ctx.probe is not None and ctx.probe.signal == "SIGILL"
        text = (
            f"OPENBLAS_CORETYPE={value} selects kernels that need {', '.join(missing)}, "
            "which this CPU lacks"
        )
        if crashed:
            return Finding("error", text + ": the BLAS probe died with SIGILL", unset)
        if core.name.lower() in chosen or not chosen:
            return Finding("error", text + ": the first matrix product dies with SIGILL", unset)
        return Finding(
            "warning",
            text + f"; this OpenBLAS build has no such kernel and ran "
            f"{'/'.join(sorted(c for c in chosen if c))} instead, but a build that has it "
            "dies with SIGILL",
            unset,
        )
    if best is not None and core.rank < best.rank:
        return Finding(
            "warning",
            f"OPENBLAS_CORETYPE={value} forces older kernels than this CPU runs "
            f"(it has the instructions for {best.name}: {', '.join(sorted(best.flags))})",
            f"{unset}  (OpenBLAS detects the CPU itself), unless it is pinned "
            "on purpose for bit-identical results across machines",
        )
    return Finding("ok", f"OPENBLAS_CORETYPE={value} matches what this CPU supports")


@check("threads-x-jobs")
def check_jobs(ctx: Context) -> Finding:
    usable = ctx.usable_cores
    n, source = ctx.job_threads()
    if ctx.jobs == 1:
        return Finding("ok", ONE_JOB)
    if ctx.jobs > usable:
        return Finding(
            "warning",
            f"{ctx.jobs} concurrent jobs alone exceed the {_usable_text(ctx)}, "
            f"and each runs {count(n, 'BLAS thread')} ({source}): {n * ctx.jobs} threads",
            f"run at most {count(usable, 'job')} at once, 1 thread each: "
            + _fix_threads(1, ctx.jobs),
        )
    if n * ctx.jobs > usable:
        return Finding(
            "warning",
            f"{jobs_x_threads(ctx, n, source)} threads on {_usable_text(ctx)}: oversubscribed",
            _fix_threads(ctx.fair_share, ctx.jobs),
        )
    return Finding("ok", f"{jobs_x_threads(ctx, n)} fit {_usable_text(ctx)}")


@check("threads-over-cores")
def check_threads_vs_cores(ctx: Context) -> Finding:
    usable = ctx.usable_cores
    over = [(text, n) for text, n in _thread_counts(ctx) if n > usable]
    if not over:
        return Finding(
            "ok", f"no library or variable asks for more threads than the {_usable_text(ctx)}"
        )
    why = ""
    if usable < ctx.machine_cpus:
        why = (
            f" -- the machine shows {ctx.machine_cpus} CPUs, but this process may use only {usable}"
        )
    return Finding(
        "warning",
        "; ".join(t for t, _ in over) + f": more than the {_usable_text(ctx)}{why}",
        _fix_threads(usable),
    )


@check("openmp-runtimes")
def check_openmp_runtimes(ctx: Context) -> Finding:
    omp = ctx.omp_libs
    vendors = sorted({lib.vendor for lib in omp})
    listing = ", ".join(f"{lib.vendor} ({lib.filepath})" for lib in omp)
    if len(vendors) > 1:
        return Finding(
            "warning",
            f"{len(vendors)} different OpenMP runtimes are loaded: {listing}; each keeps "
            "its own thread pool (threads compete; Intel and LLVM document crashes when they "
            "mix)",
            "load one runtime: MKL_THREADING_LAYER=GNU makes MKL use libgomp; with conda take "
            "every package from conda-forge; do not mix pip wheels that bundle different "
            "runtimes",
        )
    if len(omp) > 1:
        return Finding(
            "info",
            f"{len(omp)} copies of {vendors[0]} are loaded: {listing}; each has its own "
            "thread pool",
            "the OpenMP variables (blastune env) reach both; blastune.limit() sets both at "
            "run time",
        )
    return Finding("ok", f"one OpenMP runtime: {listing}" if omp else "no OpenMP runtime loaded")


@check("blas-copies")
def check_blas_copies(ctx: Context) -> Finding:
    # one rule with info's warning (facts.info.pool_disagreement): speak only when the copies'
    # thread counts differ (a limit set through one did not reach the other), never for copies
    # that agree
    said = pool_disagreement(ctx.loaded, lambda lib: library_label(lib, ctx.bindings))
    if said is not None:
        return Finding(
            "warning",
            said,
            "limit them all at once: with blastune.limit(n): ... (or "
            "threadpoolctl.threadpool_limits(n))",
        )
    libs = [lib for lib in ctx.blas_libs if lib.num_threads != 1 or lib.control != "fixed"]
    if len(libs) < 2:
        return Finding(
            "ok",
            f"{len(libs) or 'no'} thread-pooled BLAS librar{'y' if len(libs) == 1 else 'ies'} "
            "loaded",
        )
    return Finding(
        "ok",
        f"{len(libs)} BLAS copies loaded, each with its own pool, all at "
        f"{count(libs[0].num_threads, 'thread')}: the variables and blastune.limit() reach every "
        "copy",
    )


@check("slow-blas")
def check_slow_blas(ctx: Context) -> Finding | list[Finding]:
    fams = {fam.name: fam for fam in BLAS_FAMILIES}
    rated = [f for f in fams.values() if f.measured_gflops]
    fastest = max(rated, key=lambda f: f.measured_gflops) if rated else None
    out = []
    slow = {}  # file -> library; numpy and scipy usually share it
    for b in ctx.bindings:
        fam = fams.get(b.library.vendor) if b.api == "blas" and b.library is not None else None
        if fam is not None and fam.slow:
            slow.setdefault(b.library.filepath, (b.library, fam))
    for path, (lib, fam) in slow.items():
        who = " and ".join(library_users(path, ctx.bindings)) or "numpy"
        text = f"{who} call{'s' * (' and ' not in who)} {fam.display_name or fam.name} ({path})"
        if fam.measured_gflops and fastest is not None and fastest is not fam:
            rate, fast = fam.measured_gflops, fastest.measured_gflops
            text += (
                f": dot 2000x2000 ran at {rate:g} GFLOP/s per core against {fast:g} for "
                f"{fastest.display_name or fastest.name} ({fast / rate:.0f}x slower) on a 2-core "
                "Zen3 (`blastune sweep --op dot` measures it here)"
            )
        out.append(
            Finding(
                "warning",
                text + ("" if lib.num_threads != 1 else ", and it never uses more than 1 thread"),
                _switch_fix(path),
            )
        )
    if not out:
        vendors = sorted({b.library.vendor for b in ctx.bindings if b.api == "blas" and b.library})
        return Finding(
            "ok", f"numpy/scipy call an optimised BLAS ({', '.join(vendors) or 'none found'})"
        )
    return out


def _switch_fix(path: str) -> str:
    fixes = [
        "pip install --force-reinstall numpy scipy (wheels bundle OpenBLAS)",
        "conda install -c conda-forge 'libblas=*=*openblas'",
    ]
    m = re.search(r"/usr/lib/([a-z0-9_]+-linux-gnu)/", path)
    if m:
        fixes.append(
            "sudo apt install libopenblas0-pthread && sudo update-alternatives --config "
            f"libblas.so.3-{m.group(1)}"
        )
    return "; or ".join(fixes)


# the vendor families' checks (Family.doctor_check) come here in the report
family_checks_here()


@check("cpu-pressure")
def check_cpu_pressure(ctx: Context) -> Finding:
    """Is the machine busy now? Timings and the threads each job gets suffer when it is.

    Info at most, never a warning: the load of the moment is no misconfiguration, and
    ``doctor --strict`` in a job script must not fail because a neighbour was compiling."""
    p = ctx.pressure
    if p is None:
        return Finding(
            "ok",
            "CPU pressure not available here (Linux >= 4.20 with PSI keeps /proc/pressure/cpu)",
        )
    now = ctx.pressure_now_pct
    level = now if now is not None else p.some_avg10
    when = (
        f"{now:.0f}% of the {ctx.pressure_window_s:.1f} s doctor ran, {p.some_avg10:.0f}% over "
        "the last 10 s"
        if now is not None
        else f"{p.some_avg10:.0f}% of the last 10 s"
    )
    text = (
        f"runnable tasks waited for a CPU {when} ({p.some_avg60:.0f}% over 60 s; "
        "/proc/pressure/cpu)"
    )
    if level >= PRESSURE_INFO_PCT:
        return Finding(
            "info",
            text + ": other programs compete for the CPUs now; measurements taken now "
            "will be disturbed and BLAS threads will wait",
            "blastune ps shows which processes wait; measure (blastune sweep, jobs) when it "
            "is quieter",
        )
    return Finding("ok", text)


# CPU pressure (PSI "some") from which doctor mentions it: a few percent is timers and daemons.
# A share already, and one that does not grow with the machine: the kernel averages "some" over the
# CPUs, each weighted by its busy time, so 10% means the same on 2 cores as on 256.
PRESSURE_INFO_PCT = 10.0
