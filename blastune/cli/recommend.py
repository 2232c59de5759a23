"""``blastune recommend``: the BLAS threads per job for N concurrent jobs.

Like ``blastune env``, stdout carries the exports alone, so ``eval "$(blastune recommend -j 4)"``
applies them; the explanation (layout, measured numbers, what the profile kept) goes to stderr,
where a person reads it and a shell's ``$(...)`` does not. ``--json`` puts everything on stdout.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer

from blastune.cli import app
from blastune.cli.env import _count
from blastune.cli.render import echo
from blastune.cli.jobs import interruptible
from blastune.cli.progress import ProgressBar
from blastune.errors import BlastuneError

# notices about the profile (advise.recommend.update_profile), folded into the one profile line
_PROFILE_NOTICES = (
    "not saved in the profile",
    "profile entry for ",
    "profile not saved",
    "kept the clean entry",
)
_KEPT = re.compile(r"kept the clean entry for (\d+) job")


def _saved_jobs(rec, accept_noisy: bool) -> list[int]:
    """The job counts whose advice this run wrote into the profile."""
    if not rec.profile:
        return []
    kept = {int(m.group(1)) for n in rec.notices for m in [_KEPT.match(n)] if m}
    return [
        int(j)
        for j, e in rec.profile_entries.items()
        if int(j) not in kept and (accept_noisy or not e.get("noisy"))
    ]


def _profile_line(rec, accept_noisy: bool) -> str | None:
    """One sentence on what the profile now holds from this run (and what it did not take)."""
    saved = _saved_jobs(rec, accept_noisy)
    if saved:
        what = ", ".join(
            f"{j} job(s) -> {rec.profile_entries[str(j)]['threads']} thread(s)"
            for j in sorted(saved)
        )
        return f"profile: saved {what} in {rec.profile}"
    if (
        rec.profile_entries
        and rec.same_machine
        and not any(n.startswith(_PROFILE_NOTICES) for n in rec.notices)
    ):
        return "profile: nothing saved"
    return None


def render_recommendation(rec, accept_noisy: bool = False) -> str:
    """The explanation, for stderr; the exports themselves go to stdout alone."""
    if rec.jobs is None:
        head = f"Best layout: {rec.layout}"
    else:
        head = f"For {rec.jobs} concurrent job(s): {rec.layout}"
    out = [head, f"BLAS threads per job: {rec.threads}", "", "Why:"]
    out += [f"  - {line}" for line in rec.rationale]
    out += ["", f"In Python: {rec.python}", "", f"measured by: {rec.source}"]
    line = _profile_line(rec, accept_noisy)
    if line:
        out.append(line)
    profile_notes = [n for n in rec.notices if n.startswith(_PROFILE_NOTICES)]
    out += [f"notice: {n}" for n in rec.notices if n not in profile_notes]
    # "profile: ..." once: the notices' own words start with "profile" or say "in the profile"
    out += [
        "profile: "
        + n.replace("not saved in the profile, ", "not saved, ", 1).removeprefix("profile ")
        for n in profile_notes
    ]
    if rec.noisy:
        out.insert(0, "NOISY (--accept-noisy): " + "; ".join(rec.noisy))
    evaluable = rec.shell not in ("json", "docker", "dotenv")
    hint = ': eval "$(blastune recommend ...)" applies them' if evaluable else ""
    out += ["", f"exports ({rec.shell}) on stdout{hint}"]
    return "\n".join(out)


@app.command("recommend", short_help="The BLAS threads per job for N concurrent jobs.")
def recommend_command(
    source: Path = typer.Option(
        None, "--from", help="A saved jobs or sweep results file (default: measure briefly now)."
    ),
    jobs: int = typer.Option(
        None,
        "--jobs",
        "-j",
        parser=_count("--jobs"),
        metavar="N",
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
        parser=_count("--size"),
        metavar="N",
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
    json_out: bool = typer.Option(False, "--json", help="Print the recommendation as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
):
    """The layout and BLAS threads per job for N concurrent jobs, with the measured numbers behind it
    and the exports for your shell: the exports alone on stdout, so
    eval "$(blastune recommend -j 4)" applies them; the explanation on stderr. Advice from contended
    or unstable measurements is refused (say --accept-noisy to take it anyway); the advice is saved
    per workload and job count in this machine's profile (see `blastune profile show`)."""
    from blastune.advise.recommend import BUILTIN_OP, BUILTIN_SIZE, recommend
    from blastune.cli.render import emit_json
    from blastune.control.exports import check_shell

    check_shell(shell)  # before minutes of measuring, not after
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
    echo(render_recommendation(rec, accept_noisy), err=True)
    typer.echo(rec.exports)
