"""``blastune ps``: processes running a BLAS, the threads they really run and how long they
waited."""

from __future__ import annotations

import typer

from blastune.cli import app
from blastune.cli.render import FORMAT, WIDE, check_format, echo, emit_json, json_option
from blastune.present.ps import render_ps


@app.command("ps", short_help="Processes running a BLAS, their threads against the cores.")
def ps_command(
    seconds: float = typer.Argument(
        None,
        metavar="SECONDS",
        show_default=False,
        help="Refresh interval for --watch (default 2).",
    ),
    watch: bool = typer.Option(
        False, "--watch", help="Refresh every SECONDS until Ctrl-C: ps --watch [SECONDS]."
    ),
    json_out: bool = json_option(
        "Print JSON (schema blastune.ps/1); one line per refresh with --watch."
    ),
    interval: float = typer.Option(
        0.5,
        "--interval",
        min=0.0,
        help="Seconds over which CPU use and run-queue wait are measured (0: none).",
    ),
    wide: bool = WIDE,
    fmt: str = FORMAT,
):
    """Every process with a BLAS or OpenMP runtime: the threads its BLAS really runs, its CPU use,
    and how long its threads waited for a CPU (run-queue wait, measured) -- against the usable
    cores."""
    import json
    import sys
    import time

    from blastune.errors import BlastuneError
    from blastune.facts.census import MAX_INTERVAL, processes

    if seconds is not None and not watch:
        raise BlastuneError(
            f"unexpected argument {seconds:g}: SECONDS goes with --watch (blastune ps --watch 5)"
        )
    period = 2.0 if seconds is None else seconds
    if not 0 < period <= MAX_INTERVAL:  # also refuses nan and inf
        raise BlastuneError(
            f"invalid --watch interval {period:g}: must be > 0 and <= {MAX_INTERVAL:g} seconds"
        )
    if not json_out:
        check_format(fmt)
    if not watch:
        census = processes(interval=interval)
        if json_out:
            emit_json(census.to_dict())
        else:
            echo(render_ps(census, fmt, wide))
        return
    try:
        # The period is from one refresh's start to the next: each census takes its own time (the
        # sampling interval only when it found a process to sample), so sleep to a deadline.
        due = time.monotonic()
        while True:
            census = processes(interval=min(interval, period))
            if json_out:
                sys.stdout.write(json.dumps(census.to_dict(), default=str) + "\n")
            else:
                sys.stdout.write("\033[H\033[2J" if sys.stdout.isatty() else "\n")
                sys.stdout.write(
                    time.strftime("%H:%M:%S ") + f"every {period:g} s, Ctrl-C to stop\n"
                )
                sys.stdout.write(render_ps(census, fmt, wide) + "\n")
            sys.stdout.flush()
            due += period
            now = time.monotonic()
            if due < now:  # a refresh outlasted the period: the next now, no burst to catch up
                due = now
            time.sleep(due - now)
    except KeyboardInterrupt:  # the way to leave --watch: not an error
        return
