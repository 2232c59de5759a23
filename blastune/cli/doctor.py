"""``blastune doctor`` and ``blastune ps``."""
from __future__ import annotations

import typer

from blastune.cli import app
from blastune.cli.render import emit_json, table

_MARK = {"ok": "ok", "info": "info", "warning": "WARNING", "error": "ERROR"}


def _wrap(text: str, width: int, indent: str = "") -> str:
    import textwrap

    return textwrap.fill(text, width, subsequent_indent=indent, break_on_hyphens=False, break_long_words=False)


def render_doctor(report, fmt: str = "simple", show_ok: bool = True, width: int | None = None) -> str:
    import shutil

    # the finding column gets what the terminal leaves after the mark and the check id
    width = max(40, (width or shutil.get_terminal_size((140, 24)).columns) - 33)
    rows = []
    for f in report.findings:
        if f.severity == "ok" and not show_ok:
            continue
        text = _wrap(f.finding, width) + (f"\n{_wrap('  fix: ' + f.fix, width, '       ')}" if f.fix else "")
        rows.append([_MARK[f.severity], f.id, text])
    out = [table(rows, ["", "check", "finding / fix"], fmt) if rows else "no problems found"]
    counts = {s: len(report.by_severity(s)) for s in ("error", "warning", "info", "ok")}
    out.append("\n" + ", ".join(f"{n} {s}" for s, n in counts.items())
               + f"  (usable cores: {report.usable_cores}, limited by {report.usable_basis}; jobs: {report.jobs})")
    out += [f"note: {n}" for n in report.notes]
    return "\n".join(out)


@app.command("doctor", short_help="Find BLAS oversubscription and misconfiguration here.")
def doctor_command(
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="How many jobs will run at once with this environment."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 on warnings too (errors always exit 2)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object (schema blastune.doctor/1)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Show only findings that are not ok."),
    fmt: str = typer.Option("simple", "--format", "-f", help="tabulate table style: simple, github, grid, ..."),
):
    """Find BLAS oversubscription and misconfiguration here, each with its fix.

    Exit status: 0 clean, 2 errors, 1 warnings with --strict.
    """
    from blastune.advise.doctor.report import doctor

    report = doctor(jobs=jobs)
    if json_out:
        emit_json(report.to_dict())
    else:
        typer.echo(render_doctor(report, fmt, show_ok=not quiet))
    raise typer.Exit(report.exit_status(strict))


def _cpu(p) -> str:
    return "-" if p.cpu_percent is None else f"{p.cpu_percent:.0f}"


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def render_ps(census, fmt: str = "simple", wide: bool = False) -> str:
    rows = []
    for p in census.processes:
        env = " ".join(f"{k}={v}" for k, v in (p.env or {}).items()) if p.env is not None else "(unreadable)"
        rows.append([p.pid, p.user or "?", ",".join(p.vendors), p.threads, p.blas_threads, _cpu(p),
                     env or "-", p.command if wide else _short(p.command)])
    out = []
    if rows:
        out.append(table(rows, ["pid", "user", "vendors", "threads", "BLAS threads", "CPU %", "thread vars",
                                "command"], fmt))
    else:
        out.append("(no process with a BLAS or OpenMP runtime found)")
    out.append(f"\n{census.verdict}: {census.message}")
    out += [f"note: {n}" for n in census.notes]
    return "\n".join(out)


@app.command("ps", short_help="Processes running a BLAS, their threads against the cores.")
def ps_command(
    seconds: float = typer.Argument(None, metavar="SECONDS", show_default=False,
                                    help="Refresh interval for --watch (default 2)."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh every SECONDS until Ctrl-C: ps --watch [SECONDS]."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (schema blastune.ps/1); one line per refresh with --watch."),
    interval: float = typer.Option(0.5, "--interval", min=0.0, help="Seconds between the two CPU-time samples."),
    wide: bool = typer.Option(False, "--wide", help="Do not shorten commands."),
    fmt: str = typer.Option("simple", "--format", "-f", help="tabulate table style: simple, github, grid, ..."),
):
    """Every process with a BLAS or OpenMP runtime, its threads and CPU use, against the usable cores."""
    import json
    import sys
    import time

    from blastune.errors import BlastuneError
    from blastune.facts.census import MAX_INTERVAL, processes

    if seconds is not None and not watch:
        raise BlastuneError(f"unexpected argument {seconds:g}: SECONDS goes with --watch (blastune ps --watch 5)")
    period = 2.0 if seconds is None else seconds
    if not 0 < period <= MAX_INTERVAL:  # also refuses nan and inf
        raise BlastuneError(f"invalid --watch interval {period:g}: must be > 0 and <= {MAX_INTERVAL:g} seconds")
    if not watch:
        census = processes(interval=interval)
        if json_out:
            emit_json(census.to_dict())
        else:
            typer.echo(render_ps(census, fmt, wide))
        return
    try:
        while True:
            census = processes(interval=min(interval, period))
            if json_out:
                sys.stdout.write(json.dumps(census.to_dict(), default=str) + "\n")
            else:
                sys.stdout.write("\033[H\033[2J" if sys.stdout.isatty() else "\n")
                sys.stdout.write(time.strftime("%H:%M:%S ") + f"every {period:g} s, Ctrl-C to stop\n")
                sys.stdout.write(render_ps(census, fmt, wide) + "\n")
            sys.stdout.flush()
            time.sleep(max(0.0, period - min(interval, period)))
    except KeyboardInterrupt:  # the way to leave --watch: not an error
        return
