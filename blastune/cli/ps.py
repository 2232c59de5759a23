"""``blastune ps``: processes running a BLAS, the threads they really run and how long they waited."""

from __future__ import annotations

import typer

from blastune.cli import app
from blastune.cli.render import WIDE, echo, emit_json, set_wide, table


def _cpu(p) -> str:
    return "-" if p.cpu_percent is None else f"{p.cpu_percent:.0f}"


# '..._NUM_THREADS' and the like: the part a reader needs to know which library a count is for
_THREAD_SUFFIXES = ("_NUM_THREADS", "_MAXIMUM_THREADS", "_THREADS")


def _short_var(name: str) -> str:
    """A thread variable without its suffix: 'X_NUM_THREADS' -> 'X', 'Y_MAXIMUM_THREADS' -> 'Y'
    (explained under the table; the names themselves live in the vendor registry)."""
    for suffix in _THREAD_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _env(env: dict[str, str] | None, wide: bool = False) -> str:
    """The thread counts it was given: 'OPENBLAS=1 OMP=1', or '1 (7 vars)' when set all alike
    (blastune env/run set them so); other variables (MKL_DYNAMIC, ...) are in --wide and --json."""
    if env is None:
        return "(unreadable)"
    if wide:
        return " ".join(f"{k}={v}" for k, v in env.items()) or "-"
    counts = {k: v for k, v in env.items() if k.endswith(_THREAD_SUFFIXES)}
    values = set(counts.values())
    if len(counts) > 2 and len(values) == 1:
        return f"{values.pop()} ({len(counts)} vars)"
    return " ".join(f"{_short_var(k)}={v}" for k, v in counts.items()) or "-"


def _waited(p) -> str:
    if p.wait_share_pct is None:
        return "-"
    return f"{p.wait_share_pct:.0f}" + ("!" if p.contended else "")


def _command(cmd: str, wide: bool) -> str:
    """'/root/.pyenv/versions/3.11.7/bin/python3 -m pytest' -> 'python3 -m pytest', as top shows it:
    the program's name and what it runs matter more than where it is installed (--wide: whole)."""
    if wide:  # whole, but on one line: a 'python -c' script's newlines as \n, the way ps(1) escapes
        return cmd.replace("\n", "\\n")
    exe, sep, rest = cmd.partition(" ")
    if exe.startswith("/"):
        exe = exe.rsplit("/", 1)[-1]
    return " ".join((exe + sep + rest).split())


def render_ps(census, fmt: str = "simple", wide: bool = False) -> str:
    rows = []
    for p in census.processes:
        rows.append(
            [
                p.pid,
                p.user or "?",
                ", ".join(p.vendors),
                p.threads,
                p.blas_threads,
                _cpu(p),
                _waited(p),
                _env(p.env, wide),
                _command(p.command, wide),
            ]
        )
    out = []
    if rows:
        # the command takes the width left over, one line per process, cut at its end (fit_table)
        out.append(
            table(
                rows,
                [
                    "pid",
                    "user",
                    "vendors",
                    "threads",
                    "BLAS",
                    "CPU %",
                    "wait %",
                    "env vars",
                    "command",
                ],
                fmt,
                wide=True if wide else None,
                clip=(8,),
            )
        )
    else:
        out.append("(no process with a BLAS or OpenMP runtime found)")
    out.append(f"\n{census.verdict}: {census.message}")
    if rows:
        out.append("BLAS: the threads one BLAS call in it runs; threads: all its threads")
    if census.measured_by == "schedstat" and rows:
        out.append(
            f"wait %: share of the time its threads wanted a CPU spent waiting for one, over "
            f"{census.interval:g} s; ! = over {census.threshold_pct:g}% while it computed"
        )
    if rows and not wide and any(p.env for p in census.processes):
        out.append(
            "env vars: OMP=1 is OMP_NUM_THREADS=1; '1 (5 vars)': five thread variables, "
            "all 1; every variable whole with --wide"
        )
    out += [f"note: {n}" for n in census.notes]
    return "\n".join(out)


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
    json_out: bool = typer.Option(
        False,
        "--json",
        help="Print JSON (schema blastune.ps/1); one line per refresh with --watch.",
    ),
    interval: float = typer.Option(
        0.5,
        "--interval",
        min=0.0,
        help="Seconds over which CPU use and run-queue wait are measured (0: none).",
    ),
    wide: bool = WIDE,
    fmt: str = typer.Option(
        "simple", "--format", "-f", help="tabulate table style: simple, github, grid, ..."
    ),
):
    """Every process with a BLAS or OpenMP runtime: the threads its BLAS really runs, its CPU use, and
    how long its threads waited for a CPU (run-queue wait, measured) -- against the usable cores."""
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
    if not watch:
        census = processes(interval=interval)
        if json_out:
            emit_json(census.to_dict())
        else:
            set_wide(wide)
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
