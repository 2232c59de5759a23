"""``blastune jobs``: parse the options, call ``blastune.jobs`` (``run_jobs``), render the result."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import typer

from blastune.cli import app
from blastune.cli.progress import ProgressBar
from blastune.cli.render import WIDE, echo, notice, set_wide
from blastune.errors import BlastuneError

NO_VALUE = "—"


# --- stopping -------------------------------------------------------------------------------------


@contextlib.contextmanager
def interruptible(what_is_lost: str, progress: ProgressBar | None = None):
    """SIGINT, SIGTERM, SIGHUP: the layout processes are already ended by the library; say what was
    kept in one line and exit 128 + the signal (130, 143, 129)."""
    from blastune.measure.jobs.stopping import JobsInterrupted

    try:
        yield
    except KeyboardInterrupt as exc:
        if progress is not None:
            progress.stop()
        signum = getattr(exc, "signum", 2)
        name = {2: "Ctrl-C", 15: "SIGTERM", 1: "SIGHUP"}.get(signum, f"signal {signum}")
        saved = getattr(exc, "saved_to", None)
        result = getattr(exc, "result", None)
        if getattr(exc, "save_error", None):  # a full disk: where the finished layouts went instead
            kept = exc.save_error
        elif isinstance(exc, JobsInterrupted) and saved is not None and result is not None:
            kept = (
                f"{len(result.results)} layout(s) measured, saved to {saved} (status interrupted)"
            )
        else:
            kept = what_is_lost
        notice(f"interrupted by {name}: worker processes ended; {kept}", "")
        sys.exit(128 + signum)


@contextlib.contextmanager
def stdout_to_stderr(enabled: bool):
    """With --json, stdout carries only the document: whatever the user's tasks print -- in the layout
    processes (they inherit file descriptor 1) or from C code -- goes to stderr."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 1)
        os.close(saved)


# --- rendering -----------------------------------------------------------------------------------------

# the cells the report shows too (blastune.present.rows)
from blastune.present.rows import jobs_rate as _rate  # noqa: E402
from blastune.present.rows import jobs_threads as _threads_cell  # noqa: E402
from blastune.present.rows import jobs_wait as _wait_cell  # noqa: E402


def _num(v, spec, suffix="") -> str:
    return "?" if v is None else format(v, spec) + suffix


def _bounded(r, name: str, text: str) -> str:
    """A figure beyond its physical bound is shown with a '!' (the reason is in the notes)."""
    return text + "!" if name in r.beyond_bounds else text


def render_jobs(res, fmt: str = "simple") -> str:
    from blastune.cli.render import table

    rows, notes = [], []
    for r in res.results:
        why = list(r.notes) + [f"{k}: {v}" for k, v in r.beyond_bounds.items()]
        mark = ""
        if why:
            notes.append(
                f"[{len(notes) + 1}] {r.layout.head} x {_threads_cell(r)}: " + "; ".join(why)
            )
            mark = f" [{len(notes)}]"
        spread = NO_VALUE if r.spread is None else f"{100 * r.spread:.1f}%"
        eff = None if r.cpu_efficiency is None else 100 * r.cpu_efficiency
        rows.append(
            [
                r.layout.head + mark,
                _threads_cell(r),
                _num(r.wall_s, ".3f"),
                spread,
                _rate(r.tasks_per_s),
                _bounded(r, "speedup", _num(r.speedup, ".2f", "x")),
                _num(r.busy_cores, ".2f"),
                _bounded(r, "cpu_efficiency", _num(eff, ".0f", "%")),
                _wait_cell(r),
            ]
        )
    w = res.workload
    head = (
        f"{res.tasks} tasks of {w.describe()}; {res.repeats} repeat(s), median shown; "
        f"{res.usable_cores} usable cores"
    )
    more = [
        f"{r.layout.head} x {_threads_cell(r)} ran {r.tasks:,}"
        for r in res.results
        if r.tasks is not None and r.tasks != res.tasks
    ]
    if more:
        head += "; more tasks where a batch was short: " + ", ".join(more)
    if res.status == "interrupted":
        head += "; INTERRUPTED (partial)"
    out = [
        head,
        table(
            rows,
            [
                "layout",
                "BLAS thr.",
                "wall s",
                "spread",
                "tasks/s",
                "speed-up",
                "busy cores",
                "CPU eff.",
                "wait",
            ],
            fmt,
        ),
    ]
    out += notes
    best = res.best
    out.append(
        f"fastest: {best.layout.label} ({_rate(best.tasks_per_s)} tasks/s, {best.speedup:.2f}x serial)"
        + (" -- contended, not advice" if best.contended else "")
    )
    out.append(
        "speed-up: layout tasks/s / serial tasks/s; busy cores: CPU s / wall s; CPU eff.: "
        "serial CPU s / layout CPU s per task; spread: standard error of the median (3+ "
        "repeats, else —); wait: run-queue wait of its "
        "threads (C = contended by other programs, s = self-inflicted by oversubscription); ! = beyond "
        "physical bounds (see notes)"
    )
    out += [f"warning: {m}" for m in res.warnings]
    return "\n".join(out)


# --- the command ---------------------------------------------------------------------------------------


def _parse_threads(text: str) -> list[int | None]:
    from blastune.cli.render import parse_int_list

    out = []
    for part in str(text).replace(" ", "").split(","):
        if part in ("default", "naive"):
            out.append(None)
        elif part:
            out.extend(parse_int_list(part, "BLAS thread count"))
    if not out:
        raise BlastuneError("no BLAS thread count given: e.g. --threads 1,2,default")
    return out


def _plan(layouts: str | None, workers: str | None, threads: str | None, executor: str):
    """The layouts the options ask for, or None for the default grid."""
    from blastune.cli.render import parse_int_list
    from blastune.measure.jobs.layouts import EXECUTORS, layouts_from_lists, parse_layouts

    if layouts is not None:
        if workers is not None or threads is not None:
            raise BlastuneError("give --layouts or --workers/--threads, not both")
        return parse_layouts(layouts)
    if workers is None and threads is None:
        return None
    from blastune.facts.cpu import usable_cores

    ws = parse_int_list(workers, "worker count") if workers is not None else [usable_cores()[0]]
    ts = _parse_threads(threads) if threads is not None else [1]
    exs = [e for e in executor.replace(" ", "").split(",") if e]
    if not exs or any(e not in EXECUTORS for e in exs):
        raise BlastuneError(
            f"invalid --executor {executor!r}: choose thread, process or thread,process"
        )
    return layouts_from_lists(ws, ts, exs)


def _save_profile(res):
    """The advice layer remembers the best BLAS threads per worker count: (profile path or None, notices
    -- noisy entries left out, a broken cache named). Never costs the measurement."""
    from blastune.advise.recommend import profile_from_jobs

    return profile_from_jobs(res)


@app.command("jobs", short_help="Measure layouts of many concurrent tasks side by side.")
def jobs_command(
    tasks: int = typer.Option(
        None, "--tasks", "-n", help="Tasks per timed batch (default: about 1 s serial)."
    ),
    op: str = typer.Option(None, "--op", help="A sweep op each task runs once (default dot)."),
    size: int = typer.Option(
        None,
        "--size",
        "-s",
        help="Op: matrix order (300). python: list length. numpy: array length.",
    ),
    workload: str = typer.Option(
        None,
        "--workload",
        help="python (a pure-Python loop holding the GIL) or numpy (elementwise, "
        "releases the GIL).",
    ),
    func: str = typer.Option(
        None,
        "--func",
        help="package.module:function called with the task index; "
        "must be importable (the current directory is on the path).",
    ),
    dtype: str = typer.Option("float64", "--dtype", "-d", help="Op dtype."),
    lib: str = typer.Option("numpy", "--lib", help="Op library: numpy or scipy."),
    layouts: str = typer.Option(
        None,
        "--layouts",
        "-l",
        help="Comma-separated EXECUTOR:WxT, e.g. serial,thread:2x1 or "
        "process:2x1,process:2xdefault (+pin: each worker on its own "
        "CPUs).",
    ),
    workers: str = typer.Option(None, "--workers", help="Worker counts, e.g. 1,2 (1 = serial)."),
    threads: str = typer.Option(
        None,
        "--threads",
        "-t",
        metavar="T[,T...]",
        help="BLAS threads per worker, e.g. 1,2,default.",
    ),
    executor: str = typer.Option(
        "thread,process", "--executor", help="With --workers: thread, process or both."
    ),
    repeats: int = typer.Option(
        3, "--repeats", "-r", help="Timed batches per layout (median reported)."
    ),
    budget: float = typer.Option(
        None,
        "--budget",
        "-b",
        help="Seconds for the whole run: batches that would not fit are left out (and said so).",
    ),
    out: Path = typer.Option(
        None, "--out", "-o", help="Save the results as JSON (schema blastune.jobs/1)."
    ),
    force: bool = typer.Option(False, "--force", help="With --out: replace an existing file."),
    save_profile: bool = typer.Option(
        True,
        "--save-profile/--no-save-profile",
        help="Remember the best BLAS threads per worker count for limit('auto') and env --auto.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    fmt: str = typer.Option(
        "simple", "--format", "-f", help="tabulate table style: simple, github, grid, ..."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No estimate, no progress bar."),
    wide: bool = WIDE,
):
    """Run the same tasks under several layouts (serial, W threads, W processes x T BLAS threads, and the
    naive W processes x default threads) and compare wall time, tasks/s, speed-up, CPU efficiency and
    how long their threads waited for a CPU."""
    from blastune.cli.render import check_format, emit_json
    from blastune.core.counts import check_count
    from blastune.core.files import SaveFailed
    from blastune.measure.jobs.entry import run_jobs
    from blastune.measure.workloads import make_workload

    if tasks is not None:
        check_count(tasks, "--tasks")
    check_count(repeats, "--repeats", hi=10_000)
    check_format(fmt)
    if budget is not None and not budget > 0:
        raise BlastuneError(f"invalid --budget {budget:g}: must be a number of seconds above 0")
    if force and out is None:
        raise BlastuneError(
            "--force replaces an existing --out file: give --out FILE, or leave --force out"
        )
    if out is not None:
        from blastune.core.files import check_output, refuse_stdout_with_json

        if json_out:
            refuse_stdout_with_json(out, "--out")
        check_output(
            out, force=force, what="results file", option="--force"
        )  # now, not after measuring
    if func and os.getcwd() not in sys.path:
        # like `python -m`: modules beside the user are importable; the layout processes get sys.path
        sys.path.insert(0, os.getcwd())
    wl = make_workload(op=op, size=size, workload=workload, func=func, dtype=dtype, lib=lib)
    plan = _plan(layouts, workers, threads, executor)
    progress = ProgressBar(quiet or json_out)
    with (
        interruptible(
            "nothing saved (no --out)" if out is None else "no layout finished: nothing saved",
            progress,
        ),
        stdout_to_stderr(json_out),
    ):
        try:
            res = run_jobs(
                wl,
                tasks,
                plan,
                repeats=repeats,
                progress=progress.jobs,
                out=out,
                force=True,
                budget=budget,
            )
            save_error, saved_to = None, str(out) if out else None
        except SaveFailed as exc:  # a full disk: the table, where the results went, then exit 2
            res, save_error, saved_to = exc.result, str(exc), exc.fallback and str(exc.fallback)
    progress.stop()
    saved, profile_notices = _save_profile(res) if save_profile and wl.uses_blas else (None, [])
    if json_out:
        emit_json(
            {
                **res.to_dict(),
                "saved_to": saved_to,
                "profile": saved,
                "profile_notices": profile_notices,
            }
        )
    else:
        set_wide(wide)
        echo(render_jobs(res, fmt))
        if saved_to is not None and not save_error:
            typer.echo(f"saved: {out}")
        if saved:
            typer.echo(f"profile updated: {saved}")
        for line in profile_notices:  # on stderr, wrapped: stdout keeps the table
            notice(line)
    if save_error:
        typer.echo(f"blastune: error: {save_error}", err=True)
        sys.exit(2)
