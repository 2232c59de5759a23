"""``blastune recommend``: which layout and how many BLAS threads per job, from measurements.

The input is a saved ``jobs`` result (layouts measured side by side), a saved ``sweep`` result (one
process at several thread counts), or -- when neither is given -- a short ``jobs`` run made here.
The rules are in ``advise.rules``; this module loads the measurement (typed models, never raw
dicts), refuses advice from noisy evidence, and updates this machine's profile.

Noise (what counts as noise is ``advise.rules``'s): noisy advice is refused (``NoisyMeasurement``:
what was noisy and what to do) unless ``accept_noisy``; the profile then keeps it marked noisy, and
a noisy entry never replaces a clean one. Profile entries whose own evidence was noisy are left out
of the profile (with a notice) unless ``accept_noisy``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from blastune.errors import BlastuneError

# imported with the module: once blastune.jobs is reached, blastune.measure is an attribute too
# (scripts write blastune.measure.jobs.layouts.parse_layouts(...) in the call's arguments)
from blastune.measure.jobs.entry import run_jobs
from blastune.core.counts import per_job

SCHEMA = "blastune.recommendation/1"
BUILTIN_OP, BUILTIN_SIZE = "dot", 300
BUILTIN_SECONDS, BUILTIN_REPEATS = 0.5, 3  # 3 repeats: the fewest with a spread, so noise is seen
RERUN_HINT = (
    "re-run when the machine is quieter (`blastune ps` shows who else uses the CPUs), "
    "or pass --accept-noisy to take it anyway (saved marked noisy, never over a clean entry)"
)


class NoisyMeasurement(BlastuneError):
    """The evidence behind the advice was disturbed or unstable; the message says which and what to
    do."""


@dataclass
class Recommendation:
    jobs: int | None  # concurrent jobs asked about (None: the best layout overall)
    executor: str  # serial | thread | process
    workers: int
    threads: int  # BLAS threads per worker/job: what the exports set
    layout: str  # human label
    spec: str  # --layouts spelling
    rationale: list[str]  # short sentences, each naming measured numbers
    env: dict[str, str]
    shell: str
    exports: str
    python: str  # the same advice as Python code
    source: str  # the file, or the built-in measurement
    source_kind: str  # jobs | sweep
    measured: dict | None = None  # the chosen layout's numbers (None when extrapolated)
    best: dict | None = None  # the fastest layout measured
    within_best: float | None = None  # chosen throughput / fastest throughput
    same_machine: bool = True
    notices: list[str] = field(default_factory=list)
    profile: str | None = None  # where the profile was saved
    profile_entries: dict = field(default_factory=dict)
    workload: str | None = None  # the profile's workload key the entries are saved under
    # accepted noise (accept_noisy): what was not clean
    noisy: list[str] = field(default_factory=list)
    # the job counts whose entries this run wrote into the profile (the others: in the notices);
    # not in the JSON, which has the entries and the notices
    profile_saved: list[int] = field(default_factory=list)

    def to_dict(self):
        from blastune import __version__

        d = asdict(self)
        del d["profile_saved"]
        return {"schema": SCHEMA, "blastune_version": __version__, **d}


# the figures of a layout a recommendation quotes (``measured``, ``best``)
_SUMMARY = (
    "tasks_per_s speedup wall_s cpu_efficiency busy_cores threads_seen wait_pct contended unstable"
).split()


def _summary(r) -> dict:
    return {"layout": r.layout.label, "spec": r.layout.spec, **{k: getattr(r, k) for k in _SUMMARY}}


def _as_model(source) -> tuple:
    """A loaded jobs or sweep document -- a dict, a typed model or ``blastune.sweep()``'s result --
    as (kind, model)."""
    from blastune.documents.jobs import JobsResult
    from blastune.documents.measured import measured_model
    from blastune.documents.sweep import SweepDocument

    doc = getattr(source, "document", source)  # blastune.sweep()'s result: its typed document
    if isinstance(doc, JobsResult):
        return "jobs", doc
    if isinstance(doc, SweepDocument):
        return "sweep", doc
    return measured_model(doc, "", "recommend")


def builtin_layouts(jobs: int | None, cores: int, workload):
    """What a recommendation without a results file measures: for ``jobs`` concurrent jobs, each
    thread count up to their share of the cores (and the library's default, the naive layout)."""
    from blastune.advise.rules import extrapolated_layout
    from blastune.documents.jobs import Layout
    from blastune.measure.jobs.entry import default_layouts
    from blastune.measure.jobs.layouts import powers_up_to

    if jobs is None:
        return default_layouts(workload, cores)
    layouts = [extrapolated_layout(jobs, t) for t in powers_up_to(per_job(cores, jobs))]
    naive = [Layout("process", jobs, None)] if jobs > 1 else []  # the library's default threads
    return layouts + naive


# --- the command ----------------------------------------------------------------------------------


def recommend(
    source=None,
    jobs: int | None = None,
    shell: str = "bash",
    save_profile: bool = True,
    op: str = BUILTIN_OP,
    size: int = BUILTIN_SIZE,
    progress=None,
    accept_noisy: bool = False,
) -> Recommendation:
    """Recommend a layout and BLAS thread count for ``jobs`` concurrent jobs (None: the best
    layout).

    ``source`` is a saved jobs/sweep file (path), a loaded document (dict or model); without it a
    short built-in ``jobs`` measurement of ``op`` at ``size`` runs here (a few seconds). Noisy
    evidence raises ``NoisyMeasurement`` unless ``accept_noisy``.
    """
    from blastune.control.exports import check_shell
    from blastune.control.profile import matches_here
    from blastune.core.counts import check_count
    from blastune.facts.cpu import usable_cores

    if jobs is not None:
        jobs = check_count(jobs, "number of jobs")
    check_shell(shell)  # before measuring, not after
    cores = usable_cores()[0]
    notices: list[str] = []
    if source is None:
        from blastune.measure.workloads import make_workload

        workload = make_workload(op=op, size=size)
        kind = "jobs"
        model = run_jobs(
            workload,
            None,
            builtin_layouts(jobs, cores, workload),
            repeats=BUILTIN_REPEATS,
            progress=progress,
            target_seconds=BUILTIN_SECONDS,
        )
        where = f"built-in measurement ({workload.describe()}, {model.tasks} tasks)"
        notices += model.warnings
    elif (
        isinstance(source, dict)
        or not isinstance(source, (str, bytes))
        and hasattr(source, "to_dict")
    ):
        kind, model = _as_model(source)
        where = f"{kind} results of {getattr(model, 'created', None) or 'unknown date'}"
    else:
        from blastune.documents.measured import load_measured

        (kind, model), where = load_measured(source, "recommend"), str(source)
    same, why_not = matches_here(model.fingerprint)
    if not same:
        notices.append(
            f"{where} was {why_not}: the advice is for that machine, and is not saved as this "
            "machine's profile"
        )
        cores = (
            (model.fingerprint or {}).get("usable_cores")
            or getattr(model, "usable_cores", None)
            or cores
        )
    try:
        return _advise(
            model, kind, where, jobs, cores, shell, same, notices, save_profile, accept_noisy
        )
    except NoisyMeasurement:
        raise
    except BlastuneError as exc:
        if str(exc).startswith(where):
            raise
        raise BlastuneError(f"{where}: {exc}") from None


def _advise(
    model, kind, where, jobs, cores, shell, same, notices, save_profile, accept_noisy
) -> Recommendation:
    from blastune.advise import rules
    from blastune.control.exports import render_exports
    from blastune.facts.environment import thread_env

    if kind == "jobs":
        from blastune.measure.jobs.analysis import rejudge

        saved = {r.layout.spec: r.contended for r in model.results}
        rejudge(model)  # today's contention rule on the raw batch figures, not the saved flags
        cleared = [r.layout.spec for r in model.results if saved[r.layout.spec] and not r.contended]
        flagged = [r.layout.spec for r in model.results if r.contended and not saved[r.layout.spec]]
        parts = [f"saved as contended, not by today's rule: {', '.join(cleared)}"] * bool(cleared)
        parts += [f"now contended: {', '.join(flagged)}"] * bool(flagged)
        if parts:
            notices.append(
                "re-judged from the raw batch figures (the CPU other programs used, as "
                "a share of what each layout wanted): " + "; ".join(parts)
            )
        advice = rules.from_jobs(model, jobs, cores)
        if not model.workload.uses_blas:
            advice.entries = {}  # a workload that never calls BLAS says nothing about BLAS threads
            advice.rationale.append(
                "this workload does not call BLAS: the exports only keep any BLAS it "
                "loads from adding threads; the layout is what matters"
            )
    else:
        advice = rules.from_sweep(model, jobs, cores)
    if advice.noisy and not accept_noisy:
        raise NoisyMeasurement(
            f"{where}: no advice from noisy measurements ({'; '.join(advice.noisy)}): " + RERUN_HINT
        )
    lay = advice.layout
    if jobs is not None and jobs > cores:
        advice.rationale.append(
            f"{jobs} jobs on {cores} usable cores share cores even at 1 thread each: "
            f"running at most {cores} at a time (e.g. xargs -P {cores}) loses nothing"
        )
    env = thread_env(advice.threads)
    rec = Recommendation(
        jobs=jobs,
        executor=lay.executor,
        workers=lay.workers,
        threads=advice.threads,
        layout=lay.label,
        spec=lay.spec,
        rationale=advice.rationale,
        env=env,
        shell=shell,
        exports=render_exports(env, shell),
        python=_python_hint(lay.executor, lay.workers, advice.threads),
        source=where,
        source_kind=kind,
        measured=_summary(advice.measured) if advice.measured else None,
        best=_summary(advice.best) if advice.best else None,
        within_best=(
            advice.measured.tasks_per_s / advice.best.tasks_per_s
            if advice.measured and advice.best and advice.best.tasks_per_s
            else None
        ),
        same_machine=same,
        notices=notices,
        workload=advice.workload.key,
        noisy=list(advice.noisy),
        profile_entries={
            str(j): {k: v for k, v in e.to_dict().items() if k not in ("source", "measured")}
            for j, e in sorted(advice.entries.items())
        },
    )
    if advice.noisy:
        rec.notices.append(
            "taken from noisy measurements (--accept-noisy): " + "; ".join(advice.noisy)
        )
    if save_profile and same and advice.entries:
        rec.profile, more, rec.profile_saved = update_profile(
            advice.workload, advice.entries, f"{kind}: {where}", accept_noisy
        )
        rec.notices += more
    return rec


def update_profile(
    workload, entries: dict, source: str, accept_noisy: bool = False, hint: str = RERUN_HINT
) -> tuple[str | None, list[str], list[int]]:
    """Save ``entries`` (``ProfileEntry`` by job count) for ``workload`` into this machine's
    profile.

    Never raises for the profile's sake: a measurement or advice already made is not lost to a bad
    cache. Returns (the profile's path or None, notices, the job counts whose entries it saved)."""
    from blastune.control.profile import ProfileError, save_advice

    notices = []
    skipped = [f"{j} job(s) ({e.noisy})" for j, e in sorted(entries.items()) if e.noisy]
    if skipped and not accept_noisy:
        notices.append(
            f"not saved in the profile, from noisy measurements: {'; '.join(skipped)}; {hint}"
        )
    keep = {
        j: replace(e, source=source)
        for j, e in sorted(entries.items())
        if accept_noisy or not e.noisy
    }
    if not keep:
        return None, notices, []
    try:
        saved = save_advice(workload.key, workload.describe(), keep)
    except ProfileError as exc:
        return None, notices + [f"profile not saved: {exc}"], []
    except OSError as exc:
        return None, notices + [f"profile not saved: {exc.strerror or exc}"], []
    done = [j for j in keep if j not in saved.kept]
    notices += [  # said only once it is saved
        f"profile entry for {j} job(s) saved marked noisy (--accept-noisy): {entries[j].noisy}"
        for j in done
        if entries[j].noisy
    ]
    return str(saved.path), notices + list(saved.kept.values()), done


def jobs(*args, save_profile: bool = False, accept_noisy: bool = False, **kwargs):
    """``blastune.jobs()``: ``measure.jobs.entry.run_jobs`` (the arguments are its) and, with
    ``save_profile``, the best BLAS threads per worker count into this machine's profile -- where
    it went and what was left out are the result's ``profile`` and ``profile_notices``. A results
    file that could not be written (``SaveFailed``) still leaves the advice in the profile.

    ``func="package.module:function"`` may name a module in the current directory, as
    ``python -m`` would find it: the directory goes on ``sys.path`` (the layout processes get
    it)."""
    import os
    import sys

    from blastune.core.files import SaveFailed

    if kwargs.get("func") and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        res = run_jobs(*args, **kwargs)
    except SaveFailed as exc:  # the measurement is made: its advice is not lost with the file
        if save_profile and exc.result is not None:
            _save_jobs_advice(exc.result, accept_noisy)
        raise
    if save_profile:
        _save_jobs_advice(res, accept_noisy)
    return res


def _show_run_jobs_parameters(fn) -> None:
    """help(blastune.jobs) and inspect.signature show run_jobs's parameters and text (they were
    blastune.jobs's own before the profile was added) with the two ``jobs`` adds."""
    import inspect

    sig = inspect.signature(run_jobs)
    *named, rest = sig.parameters.values()  # the two go before **workload_kw
    added = [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=False, annotation="bool")
        for n in ("save_profile", "accept_noisy")
    ]
    fn.__signature__ = sig.replace(parameters=[*named, *added, rest])
    if fn.__doc__ and run_jobs.__doc__:  # none under python -OO
        fn.__doc__ = inspect.cleandoc(fn.__doc__) + "\n\n" + inspect.cleandoc(run_jobs.__doc__)


_show_run_jobs_parameters(jobs)


def _save_jobs_advice(res, accept_noisy: bool) -> None:
    """The best BLAS threads per worker count into the profile (BLAS workloads measured on this
    machine only); where they went and what was left out go in ``res.profile`` and
    ``res.profile_notices``. Never raises for the profile's sake."""
    from blastune.advise import rules
    from blastune.control.profile import matches_here

    if not res.workload.uses_blas:
        return
    same, why_not = matches_here(res.fingerprint)
    if not same:
        res.profile_notices = [f"profile not saved: the results were {why_not}"]
        return
    res.profile, res.profile_notices, _ = update_profile(
        res.workload,
        rules.entries_from_jobs(res),
        f"jobs: {res.tasks} tasks measured {res.created or 'here'}",
        accept_noisy,
        hint="re-run when the machine is quieter, or save the results (--out) and take "
        "them anyway with `blastune recommend --from FILE --accept-noisy`",
    )


def _python_hint(executor: str, workers: int, threads: int) -> str:
    if executor == "process":
        return (
            f"ProcessPoolExecutor({workers}, initializer=blastune.worker_initializer({threads}))  "
            f"# or multiprocessing.Pool({workers}, initializer=...)"
        )
    if executor == "thread":
        return f"with blastune.limit({threads}): ThreadPoolExecutor({workers}).map(...)"
    return f"with blastune.limit({threads}): ..."
