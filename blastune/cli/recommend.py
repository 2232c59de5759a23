"""``blastune recommend``: the BLAS threads per job for N concurrent jobs.

Like ``blastune env``, stdout carries the exports alone, so ``eval "$(blastune recommend -j 4)"``
applies them; the explanation (layout, measured numbers, what the profile kept) goes to stderr,
where a person reads it and a shell's ``$(...)`` does not. ``--json`` puts everything on stdout.
"""

from __future__ import annotations

from pathlib import Path

import typer

from blastune.cli import app
from blastune.cli.render import count_parser, echo, emit_json, json_option, quiet_option
from blastune.cli.jobs import interruptible
from blastune.cli.progress import ProgressBar
from blastune.errors import BlastuneError
from blastune.present.advice import render_recommendation


@app.command("recommend", short_help="The BLAS threads per job for N concurrent jobs.")
def recommend_command(
    source: Path = typer.Option(
        None, "--from", help="A saved jobs or sweep results file (default: measure briefly now)."
    ),
    jobs: int = typer.Option(
        None,
        "--jobs",
        "-j",
        parser=count_parser("--jobs"),
        help="How many jobs will run at the same time.",
    ),
    shell: str = typer.Option(
        "bash",
        "--shell",
        help="Exports for bash, zsh, sh, fish, csh, tcsh, "
        "powershell, cmd, dotenv, docker, slurm, json.",
    ),
    op: str = typer.Option(
        None,
        "--op",
        show_default=False,
        help="Op for the built-in measurement (not with --from). [default: dot]",
    ),
    size: int = typer.Option(
        None,
        "--size",
        "-s",
        parser=count_parser("--size"),
        show_default=False,
        help="Matrix order for the built-in measurement (not with --from).  [default: 300]",
    ),
    save_profile: bool = typer.Option(
        True,
        "--save-profile/--no-save-profile",
        help="Save the advice for this machine (used by limit('auto'), env --auto).",
    ),
    accept_noisy: bool = typer.Option(
        False,
        "--accept-noisy",
        help="Advise (and save, marked noisy) even from contended or unstable "
        "measurements; a noisy entry never replaces a clean one.",
    ),
    json_out: bool = json_option("Print the recommendation as JSON."),
    quiet: bool = quiet_option("No progress lines."),
):
    """The layout and BLAS threads per job for N concurrent jobs, with the measured numbers behind
    it and the exports for your shell: the exports alone on stdout, so
    eval "$(blastune recommend -j 4)" applies them; the explanation on stderr. Advice from contended
    or unstable measurements is refused (say --accept-noisy to take it anyway); the advice is saved
    per workload and job count in this machine's profile (see `blastune profile show`)."""
    from blastune.advise.recommend import BUILTIN_OP, BUILTIN_SIZE, recommend

    if source is not None and (op is not None or size is not None):
        given = " and ".join(o for o, v in (("--op", op), ("--size", size)) if v is not None)
        both = op is not None and size is not None
        raise BlastuneError(
            f"{given} {'choose' if both else 'chooses'} the built-in measurement; "
            "with --from the file says what was measured: drop " + ("them" if both else "it")
        )
    progress = ProgressBar(quiet or json_out)
    with interruptible("no advice given and the profile was not changed", progress):
        rec = recommend(
            source,
            jobs,
            shell,
            save_profile,
            op=op or BUILTIN_OP,
            size=size or BUILTIN_SIZE,
            progress=progress.jobs,
            accept_noisy=accept_noisy,
        )
    if json_out:
        emit_json(rec.to_dict())
        return
    echo(render_recommendation(rec), err=True)
    typer.echo(rec.exports)
