"""``blastune recommend``: the BLAS threads per job for N concurrent jobs."""
from __future__ import annotations

from pathlib import Path

import typer

from blastune.cli import app
from blastune.cli.render import echo
from blastune.cli.jobs import interruptible, jobs_progress
from blastune.errors import BlastuneError


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
    if rec.noisy:
        out.insert(0, "NOISY (--accept-noisy): " + "; ".join(rec.noisy))
    return "\n".join(out)


@app.command("recommend", short_help="The BLAS threads per job for N concurrent jobs.")
def recommend_command(
    source: Path = typer.Option(None, "--from", help="A saved jobs or sweep results file "
                                                     "(default: measure briefly now)."),
    jobs: int = typer.Option(None, "--jobs", "-j", help="How many jobs will run at the same time."),
    shell: str = typer.Option("bash", "--shell", help="Exports for bash, zsh, sh, fish, csh, tcsh, "
                                                            "powershell, cmd, dotenv, docker, slurm, json."),
    op: str = typer.Option("dot", "--op", help="Op for the built-in measurement."),
    size: int = typer.Option(300, "--size", "-s", help="Matrix order for the built-in measurement."),
    save_profile: bool = typer.Option(True, "--save-profile/--no-save-profile",
                                      help="Save the advice for this machine (used by limit('auto'), env --auto)."),
    accept_noisy: bool = typer.Option(False, "--accept-noisy",
                                      help="Advise (and save, marked noisy) even from contended or unstable "
                                           "measurements; a noisy entry never replaces a clean one."),
    json_out: bool = typer.Option(False, "--json", help="Print the recommendation as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
):
    """The layout and BLAS threads per job for N concurrent jobs, with the measured numbers behind it
    and the exports for your shell. Advice from contended or unstable measurements is refused (say
    --accept-noisy to take it anyway); the advice is saved per workload and job count in this
    machine's profile (see `blastune profile show`)."""
    from blastune.advise.recommend import recommend
    from blastune.cli.render import emit_json

    if jobs is not None and jobs < 1:
        raise BlastuneError(f"invalid --jobs {jobs}: must be a whole number >= 1")
    progress = jobs_progress(quiet or json_out)
    with interruptible("no advice given and the profile was not changed", progress):
        rec = recommend(source, jobs, shell, save_profile, op=op, size=size, progress=progress,
                        accept_noisy=accept_noisy)
    if json_out:
        emit_json(rec.to_dict())
    else:
        echo(render_recommendation(rec))
