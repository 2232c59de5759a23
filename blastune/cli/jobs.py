"""``blastune jobs``: parse the options, call ``blastune.jobs``, render (present.jobs)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import typer

from blastune.cli import app, fail
from blastune.cli.progress import ProgressBar
from blastune.cli.render import (
    FORMAT,
    WIDE,
    check_format,
    count_parser,
    echo,
    emit_json,
    force_option,
    json_option,
    notice,
    out_option,
    quiet_option,
    words,
)
from blastune.core.counts import parse_count
from blastune.errors import BlastuneError
from blastune.present.jobs import render_jobs


# --- stopping -------------------------------------------------------------------------------------


@contextlib.contextmanager
def interruptible(what_is_lost: str, progress: ProgressBar):
    """SIGINT, SIGTERM, SIGHUP: the layout processes are already ended by the library; say what was
    kept in one line and exit 128 + the signal (130, 143, 129)."""
    from blastune.measure.signals import JobsInterrupted

    try:
        yield
    except KeyboardInterrupt as exc:
        progress.stop()
        signum = getattr(exc, "signum", 2)
        name = {2: "Ctrl-C", 15: "SIGTERM", 1: "SIGHUP"}.get(signum, f"signal {signum}")
        if getattr(exc, "save_error", None):  # a full disk: where the finished layouts went instead
            kept = exc.save_error
        elif isinstance(exc, JobsInterrupted) and exc.saved_to and exc.result is not None:
            n = len(exc.result.results)
            kept = f"{n} layout(s) measured, saved to {exc.saved_to} (status interrupted)"
        else:
            kept = what_is_lost
        notice(f"interrupted by {name}: worker processes ended; {kept}", "")
        sys.exit(128 + signum)


@contextlib.contextmanager
def stdout_to_stderr(enabled: bool):
    """With --json, stdout carries only the document: whatever the user's tasks print -- in the
    layout processes (they inherit file descriptor 1) or from C code -- goes to stderr."""
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


# --- the command ----------------------------------------------------------------------------------


def _counts(text: str, what: str, defaults: tuple[str, ...] = ()) -> list[int | None]:
    """'1,2,default' -> [1, 2, None]: a word in ``defaults`` leaves the library its own count."""
    out = [None if word in defaults else parse_count(word, what) for word in words(text)]
    if not out:
        example = f": e.g. --threads 1,2,{defaults[0]}" if defaults else ""
        raise BlastuneError(f"no {what} given{example}")
    return out


def _plan(layouts: str | None, workers: str | None, threads: str | None, executor: str):
    """The layouts the options ask for, or None for the default grid."""
    from blastune.measure.jobs.layouts import EXECUTORS, layouts_from_lists, parse_layouts

    if layouts is not None:
        if workers is not None or threads is not None:
            raise BlastuneError("give --layouts or --workers/--threads, not both")
        return parse_layouts(layouts)
    if workers is None and threads is None:
        return None
    from blastune.facts.cpu import usable_cores

    ws = _counts(workers, "worker count") if workers is not None else [usable_cores()[0]]
    ts = _counts(threads, "BLAS thread count", ("default", "naive")) if threads is not None else [1]
    exs = words(executor)
    if not exs or any(e not in EXECUTORS for e in exs):
        raise BlastuneError(
            f"invalid --executor {executor!r}: choose thread, process or thread,process"
        )
    return layouts_from_lists(ws, ts, exs)


@app.command("jobs", short_help="Measure layouts of many concurrent tasks side by side.")
def jobs_command(
    tasks: int = typer.Option(
        None,
        "--tasks",
        "-n",
        parser=count_parser("--tasks"),
        metavar="N",
        help="Tasks per timed batch (default: about 1 s serial).",
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
        "3",
        "--repeats",
        "-r",
        parser=count_parser("--repeats", hi=10_000),
        metavar="N",
        help="Timed batches per layout (median reported).",
    ),
    budget: float = typer.Option(
        None,
        "--budget",
        "-b",
        help="Seconds for the whole run: batches that would not fit are left out (and said so).",
    ),
    out: Path = out_option("Save the results as JSON (schema blastune.jobs/1)."),
    force: bool = force_option("With --out: replace an existing file."),
    save_profile: bool = typer.Option(
        True,
        "--save-profile/--no-save-profile",
        help="Remember the best BLAS threads per worker count for limit('auto') and env --auto.",
    ),
    json_out: bool = json_option("Print the results as JSON."),
    fmt: str = FORMAT,
    quiet: bool = quiet_option("No estimate, no progress bar."),
    wide: bool = WIDE,
):
    """Run the same tasks under several layouts (serial, W threads, W processes x T BLAS threads,
    and the naive W processes x default threads) and compare wall time, tasks/s, speed-up, CPU
    efficiency and how long their threads waited for a CPU."""
    from blastune.advise.recommend import jobs
    from blastune.core.files import SaveFailed

    check_format(fmt)
    if force and out is None:
        raise BlastuneError(
            "--force replaces an existing --out file: give --out FILE, or leave --force out"
        )
    if out is not None:
        from blastune.core.files import check_output, refuse_stdout_with_json

        if json_out:
            refuse_stdout_with_json(out, "--out")
        # now, not after measuring, and in the words of the options
        check_output(out, force=force, what="results file")
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
            res = jobs(
                workload,
                tasks,
                plan,
                repeats,
                progress.jobs,
                out=out,
                force=True,
                budget=budget,
                save_profile=save_profile,
                op=op,
                size=size,
                func=func,
                dtype=dtype,
                lib=lib,
            )
            save_error, saved_to = None, str(out) if out else None
        except SaveFailed as exc:  # a full disk: the table, where the results went, then exit 2
            res, save_error, saved_to = exc.result, str(exc), exc.fallback and str(exc.fallback)
    progress.stop()
    if json_out:
        emit_json(
            {
                **res.to_dict(),
                "saved_to": saved_to,
                "profile": res.profile,
                "profile_notices": res.profile_notices,
            }
        )
    else:
        echo(render_jobs(res, fmt, wide))
        if saved_to is not None and not save_error:
            typer.echo(f"saved: {out}")
        if res.profile:
            typer.echo(f"profile updated: {res.profile}")
        for line in res.profile_notices:  # on stderr, wrapped: stdout keeps the table
            notice(line)
    if save_error:
        fail(save_error)
