"""``blastune jobs`` and ``blastune recommend``."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import typer

from blastune.cli import app
from blastune.errors import BlastuneError


def _progress(quiet: bool):
    """One line per layout on stderr, only for a person watching a terminal."""
    if quiet or not sys.stderr.isatty():
        return None

    def show(k, n, layout):
        typer.echo(f"[{k + 1}/{n}] {layout.label} ...", err=True)
    return show


@contextlib.contextmanager
def _interruptible(what_is_lost: str):
    """Ctrl-C: the workers are already ended by run_jobs; say so in one line and exit 130 (typer would
    otherwise turn the interrupt into a silent exit)."""
    try:
        yield
    except KeyboardInterrupt:
        typer.echo(f"blastune: interrupted: worker processes ended; {what_is_lost}", err=True)
        sys.exit(130)


@contextlib.contextmanager
def _stdout_to_stderr(enabled: bool):
    """With --json, stdout carries only the document: whatever the user's tasks print -- here, in the
    worker processes (they inherit file descriptor 1 when spawned) or from C code -- goes to stderr."""
    if not enabled:
        yield
        return
    import os

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


def _threads_cell(r) -> str:
    if r.layout.threads is not None:
        return str(r.layout.threads)
    return f"default ({r.threads_seen})" if r.threads_seen else "default"


def _rate(v) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def render_jobs(res, fmt: str = "simple") -> str:
    from blastune.cli.render import table

    def num(v, spec, suffix=""):
        return "?" if v is None else format(v, spec) + suffix

    rows = []
    notes = []
    for r in res.results:
        mark = ""
        if r.notes:
            notes.append(f"[{len(notes) + 1}] {r.layout.head} x {_threads_cell(r)}: " + "; ".join(r.notes))
            mark = f" [{len(notes)}]"
        rows.append([r.layout.head + mark, _threads_cell(r), num(r.wall_s, ".3f"), num(100 * r.spread, ".0f", "%"),
                     _rate(r.tasks_per_s), num(r.speedup, ".2f", "x"), num(r.busy_cores, ".2f"),
                     num(None if r.cpu_efficiency is None else 100 * r.cpu_efficiency, ".0f", "%")])
    w = res.workload
    out = [f"{res.tasks} tasks of {w.describe()}; {res.repeats} repeat(s), median shown; "
           f"{res.usable_cores} usable cores"]
    out.append(table(rows, ["layout", "BLAS threads", "wall s", "spread", "tasks/s", "speed-up",
                            "busy cores", "CPU eff."], fmt))
    out += notes
    best = res.best
    out.append(f"fastest: {best.layout.label} ({_rate(best.tasks_per_s)} tasks/s, {best.speedup:.2f}x serial)")
    out.append("speed-up: serial wall / layout wall; busy cores: CPU seconds / wall seconds; "
               "CPU eff.: serial CPU seconds / layout CPU seconds (below 100% = CPU burnt without work)")
    out += [f"warning: {m}" for m in res.warnings]
    return "\n".join(out)


@app.command("jobs", short_help="Measure layouts of many concurrent tasks side by side.")
def jobs_command(
    tasks: int = typer.Option(None, "--tasks", "-n", help="Tasks per timed batch (default: about 1 s serial)."),
    op: str = typer.Option(None, "--op", help="A sweep op each task runs once (default dot)."),
    size: int = typer.Option(None, "--size", help="Op: matrix order (300). python: list length. numpy: array length."),
    workload: str = typer.Option(None, "--workload", "-w",
                                 help="python (a pure-Python loop holding the GIL) or numpy (elementwise, "
                                      "releases the GIL)."),
    func: str = typer.Option(None, "--func", help="package.module:function called with the task index; "
                                                   "must be importable (the current directory is on the path)."),
    dtype: str = typer.Option("float64", "--dtype", help="Op dtype."),
    lib: str = typer.Option("numpy", "--lib", help="Op library: numpy or scipy."),
    layouts: str = typer.Option(None, "--layouts", "-l",
                                help="EXECUTOR:WxT list, e.g. serial,thread:2x1,process:2x1,process:2xdefault."),
    workers: str = typer.Option(None, "--workers", help="Worker counts, e.g. 1,2 (1 = serial)."),
    threads: str = typer.Option(None, "--threads", "-t", help="BLAS threads per worker, e.g. 1,2,default."),
    executor: str = typer.Option("thread,process", "--executor",
                                 help="With --workers: thread, process or both."),
    repeats: int = typer.Option(3, "--repeats", "-r", help="Timed batches per layout (median reported)."),
    out: Path = typer.Option(None, "--out", "-o", help="Save the results as JSON (schema blastune.jobs/1)."),
    force: bool = typer.Option(False, "--force", help="With --out: replace an existing file."),
    save_profile: bool = typer.Option(True, "--save-profile/--no-save-profile",
                                      help="Remember the best BLAS threads per worker count for "
                                           "limit('auto') and env --auto."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    fmt: str = typer.Option("simple", "--format", "-f", help="tabulate table style: simple, github, grid, ..."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
):
    """Run the same tasks under several layouts (serial, W threads, W processes x T BLAS threads, and the
    naive W processes x default threads) and compare wall time, tasks/s, speed-up and CPU efficiency."""
    import os

    from blastune.cli.render import TABLE_FORMATS, emit_json, parse_int_list

    if tasks is not None and tasks < 1:
        raise BlastuneError(f"invalid --tasks {tasks}: must be a whole number >= 1")
    if repeats < 1:
        raise BlastuneError(f"invalid --repeats {repeats}: must be a whole number >= 1")
    if fmt not in TABLE_FORMATS:
        raise BlastuneError(f"unknown table format {fmt!r}: choose one of {', '.join(TABLE_FORMATS)}")
    if out is not None:
        from blastune.core.files import check_writable_new
        from blastune.core.files import check_output_path

        check_writable_new(out, force=force, resume=None)
        check_output_path(out, "--out")  # fail now, not after minutes of measuring
    if func and os.getcwd() not in sys.path:
        # like `python -m`: modules beside the user are importable; spawned workers inherit sys.path
        sys.path.insert(0, os.getcwd())
    from blastune.measure.jobs.core import EXECUTORS, layouts_from_lists, parse_layouts, run_jobs
    from blastune.measure.workloads import make_workload

    wl = make_workload(op=op, size=size, workload=workload, func=func, dtype=dtype, lib=lib)
    plan = None
    if layouts is not None:
        if workers is not None or threads is not None:
            raise BlastuneError("give --layouts or --workers/--threads, not both")
        plan = parse_layouts(layouts)
    elif workers is not None or threads is not None:
        from blastune.facts.cpu import usable_cores

        ws = parse_int_list(workers, "worker count") if workers is not None else [usable_cores()[0]]
        ts = _parse_threads(threads) if threads is not None else [1]
        exs = [e for e in executor.replace(" ", "").split(",") if e]
        bad = [e for e in exs if e not in EXECUTORS]
        if bad or not exs:
            raise BlastuneError(f"invalid --executor {executor!r}: choose thread, process or thread,process")
        plan = layouts_from_lists(ws, ts, exs)
    with _interruptible("nothing saved: the layouts are compared only once all are measured"), \
            _stdout_to_stderr(json_out):
        res = run_jobs(wl, tasks, plan, repeats=repeats, progress=_progress(quiet or json_out))
    doc = res.to_dict()
    if out is not None:
        from blastune.core.files import atomic_write_json

        try:
            atomic_write_json(out, doc)
        except OSError as exc:
            raise BlastuneError(f"cannot write {out}: {exc.strerror or exc}") from None
    saved = None
    if save_profile and wl.uses_blas:
        from blastune.advise.recommend import recommend

        saved = recommend(doc, None, save_profile=True).profile
    if json_out:
        emit_json({**doc, "saved_to": str(out) if out else None, "profile": saved})
        return
    typer.echo(render_jobs(res, fmt))
    if out is not None:
        typer.echo(f"saved: {out}")
    if saved:
        typer.echo(f"profile updated: {saved}")


def render_recommendation(rec) -> str:
    if rec.jobs is None:
        head = f"Best layout: {rec.layout}"
    else:
        head = f"For {rec.jobs} concurrent job(s): {rec.layout}"
    out = [head, f"BLAS threads per job: {rec.threads}", "", "Why:"]
    out += [f"  - {line}" for line in rec.rationale]
    out += ["", f"Exports ({rec.shell}):", rec.exports, "", f"In Python: {rec.python}", "",
            f"measured by: {rec.source}"]
    if rec.profile:
        out.append(f"profile saved: {rec.profile}")
    out += [f"notice: {n}" for n in rec.notices]
    return "\n".join(out)


@app.command("recommend", short_help="The BLAS threads per job for N concurrent jobs.")
def recommend_command(
    source: Path = typer.Option(None, "--from", help="A saved jobs or sweep results file "
                                                     "(default: measure briefly now)."),
    jobs: int = typer.Option(None, "--jobs", "-j", help="How many jobs will run at the same time."),
    shell: str = typer.Option("bash", "--shell", "-s", help="Exports for bash, zsh, sh, fish, csh, tcsh, "
                                                            "powershell, cmd, dotenv, docker, slurm, json."),
    op: str = typer.Option("dot", "--op", help="Op for the built-in measurement."),
    size: int = typer.Option(300, "--size", help="Matrix order for the built-in measurement."),
    save_profile: bool = typer.Option(True, "--save-profile/--no-save-profile",
                                      help="Save the advice for this machine (used by limit('auto'), env --auto)."),
    json_out: bool = typer.Option(False, "--json", help="Print the recommendation as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
):
    """The layout and BLAS threads per job for N concurrent jobs, with the measured numbers behind it
    and the exports for your shell."""
    from blastune.advise.recommend import recommend
    from blastune.cli.render import emit_json

    if jobs is not None and jobs < 1:
        raise BlastuneError(f"invalid --jobs {jobs}: must be a whole number >= 1")
    with _interruptible("no advice given and the profile was not changed"):
        rec = recommend(source, jobs, shell, save_profile, op=op, size=size,
                        progress=_progress(quiet or json_out))
    if json_out:
        emit_json(rec.to_dict())
    else:
        typer.echo(render_recommendation(rec))
