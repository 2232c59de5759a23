"""``blastune env`` (and the thread options ``blastune run`` shares with it)."""

from __future__ import annotations

import typer

from blastune.cli import app
from blastune.cli.render import count_parser, echo, emit_json
from blastune.errors import BlastuneError


# read as text and checked by parse_count: click's own range check words its error differently
_THREADS = typer.Option(
    None,
    "--threads",
    "-t",
    parser=count_parser("--threads"),
    metavar="N",
    help="BLAS threads per job.",
)
_JOBS = typer.Option(
    None,
    "--jobs",
    "-j",
    parser=count_parser("--jobs"),
    metavar="N",
    help="Concurrent jobs sharing the usable cores.",
)
_AUTO = typer.Option(
    False, "--auto", help="Use the saved recommendation for this machine (see recommend)."
)
_PIN = typer.Option(
    False, "--pin", help="Pin to this job's own CPUs (see blastune layout); threads = its CPUs."
)
_JOB_INDEX = typer.Option(
    None, "--job-index", "-i", metavar="I", help="With --pin: which job, 0 to N-1. [default: 0]"
)
_SMT = typer.Option(False, "--smt", help="With --pin: give jobs the SMT siblings too.")


def _pin_options(pin: bool, job_index, smt: bool) -> None:
    if not pin and (job_index is not None or smt):
        raise BlastuneError(
            f"{'--job-index' if job_index is not None else '--smt'} goes with --pin"
        )


@app.command("env", short_help="Print the thread exports for a shell or job script.")
def env_command(
    threads: int = _THREADS,
    jobs: int = _JOBS,
    auto: bool = _AUTO,
    shell: str = typer.Option(
        None,
        "--shell",
        show_default=False,
        help="bash (default), zsh, sh, fish, csh, tcsh, powershell, cmd, dotenv, docker, "
        "slurm, json.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Same as --shell json, with the reason."),
    pin: bool = _PIN,
    job_index: int = _JOB_INDEX,
    smt: bool = _SMT,
):
    """Print the exports a job script needs: eval "$(blastune env -t 1)"."""
    from blastune.control.exports import check_shell, render_exports
    from blastune.control.run import job_threads

    _pin_options(pin, job_index, smt)
    if json_out and shell not in (None, "json"):
        raise BlastuneError(
            f"give --json or --shell {shell}, not both (--json is --shell json with the reason)"
        )
    shell = check_shell("bash" if shell is None else shell)  # --shell "" refused, as in recommend
    if pin and shell == "slurm":
        # a block pasted into a job script would carry this machine's CPUs to the compute node
        raise BlastuneError(
            "--pin plans CPUs of the machine it runs on: in a Slurm script run "
            'eval "$(blastune env --jobs N --pin --job-index I)" inside the job, '
            "or use blastune slurm --workers W"
        )
    job = job_threads(threads, jobs, auto, pin=pin, job_index=job_index, smt=smt)
    if job.auto is not None and job.auto.broken:
        typer.echo(f"blastune: warning: {job.auto.broken}", err=True)
    elif job.auto is not None and job.auto.fallback:  # no saved advice answered
        echo(f"blastune: notice: {job.auto.fallback}", err=True)
    if json_out:
        emit_json(job.to_dict())
    else:
        typer.echo(render_exports(job.env, shell, job.pinned.cpus if job.pinned else None))
