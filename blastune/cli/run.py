"""``blastune run``: a command with every BLAS/OpenMP thread variable set (control.run)."""

from __future__ import annotations

import json
import sys

import typer

from blastune.cli import app
from blastune.cli.render import notice
from blastune.cli.env import _AUTO, _JOB_INDEX, _JOBS, _PIN, _SMT, _THREADS, _pin_options
from blastune.errors import BlastuneError


def _finish(result, json_out: bool, report: bool) -> None:
    """After the command (or the copies): the report and/or JSON on stderr (stdout is the
    command's), its status."""
    if report and result.report is not None and not json_out:
        for line in result.report.lines():
            notice(line, "")
    if json_out:
        print(json.dumps(result.to_dict()), file=sys.stderr)
    raise typer.Exit(result.exit_status)


@app.command(
    "run",
    short_help="Run a command with every BLAS thread variable set.",
    context_settings={"allow_interspersed_args": False},
)
def run_command(
    command: list[str] = typer.Argument(
        None, metavar="-- CMD [ARGS]...", help="The command to run."
    ),
    threads: int = _THREADS,
    jobs: int = _JOBS,
    auto: bool = _AUTO,
    report: bool = typer.Option(
        False,
        "--report",
        help="After the command, print on stderr its wall and CPU "
        "time, how long its threads waited for a CPU, and the BLAS threads seen.",
    ),
    json_out: bool = typer.Option(
        False, "--json", help="After the command, print a JSON summary on stderr."
    ),
    pin: bool = _PIN,
    job_index: int = _JOB_INDEX,
    smt: bool = _SMT,
    copies: int = typer.Option(
        None,
        "--copies",
        metavar="N",
        help="Start N copies at once (with --pin each on its own CPUs); exit = worst.",
    ),
    oversubscribe: bool = typer.Option(
        False,
        "--oversubscribe",
        help="With --copies: allow more than 4 unpinned copies per usable CPU (at most 4096).",
    ),
):
    """Run a command with every BLAS/OpenMP thread variable set; its exit status is passed through.

    Without --report/--json blastune becomes the command (like env or nice): exit 127 when it is not
    found, 126 when it cannot be executed.
    """
    from blastune.control.run import CommandNotRunnable, exec_command, job_threads, run

    _pin_options(pin, job_index, smt)
    command = command or []
    try:
        if copies is not None:
            from blastune.control.copies import run_copies

            if (
                threads is not None
                or auto
                or job_index is not None
                or (jobs is not None and jobs != copies)
            ):
                raise BlastuneError(
                    "--copies N sets the jobs (N) and each copy's threads: drop --threads, --auto, "
                    "--jobs and --job-index"
                )
            result = run_copies(command, copies, pin=pin, smt=smt, oversubscribe=oversubscribe)
            _finish(result, json_out, report=False)
        if oversubscribe:
            raise BlastuneError("--oversubscribe goes with --copies N")
        job = job_threads(threads, jobs, auto, pin=pin, job_index=job_index, smt=smt)
        if job.pinned is not None:
            import os

            from blastune.control.pinning import set_process_affinity

            # the command inherits both: our mask and the placement variables
            set_process_affinity(job.pinned.cpus)
            os.environ.update(job.env)
        n = job.threads
        # Become the command, unless we must speak after it -- or we are not the program but a
        # host's call (typer's CliRunner, a test): exec would replace the host.
        if (
            not (report or json_out)
            and sys.stdout is sys.__stdout__
            and sys.stderr is sys.__stderr__
        ):
            exec_command(command, n)  # returns only by raising
        _finish(run(command, n, report=report), json_out, report)
    except CommandNotRunnable as exc:
        typer.echo(f"blastune: error: {exc}", err=True)
        raise typer.Exit(exc.exit_status) from None
