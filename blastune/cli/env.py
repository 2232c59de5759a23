"""``blastune env`` and ``blastune run``."""
from __future__ import annotations

import typer

from blastune.cli import app
from blastune.cli.render import emit_json

_THREADS = typer.Option(None, "--threads", "-t", min=1, help="BLAS threads per job.")
_JOBS = typer.Option(None, "--jobs", "-j", min=1, help="Concurrent jobs sharing the usable cores.")
_AUTO = typer.Option(False, "--auto", help="Use the saved recommendation for this machine (see recommend).")


@app.command("env", short_help="Print the thread exports for a shell or job script.")
def env_command(
    threads: int = _THREADS,
    jobs: int = _JOBS,
    auto: bool = _AUTO,
    shell: str = typer.Option("bash", "--shell", "-s",
                              help="bash, zsh, sh, fish, csh, tcsh, powershell, cmd, dotenv, docker, slurm, json."),
    json_out: bool = typer.Option(False, "--json", help="Same as --shell json, with the reason."),
):
    """Print the exports a job script needs: eval "$(blastune env -t 1)"."""
    from blastune.control.exports import render_exports
    from blastune.facts.environment import thread_env
    from blastune.control.run import resolve_threads

    n, reason = resolve_threads(threads, jobs, auto)
    env = thread_env(n)
    if json_out:
        emit_json({"schema": "blastune.env/1", "threads": n, "reason": reason, "env": env})
    else:
        typer.echo(render_exports(env, shell))


@app.command("run", short_help="Run a command with every BLAS thread variable set.", context_settings={"allow_interspersed_args": False})
def run_command(
    command: list[str] = typer.Argument(None, metavar="-- CMD [ARGS]...", help="The command to run."),
    threads: int = _THREADS,
    jobs: int = _JOBS,
    auto: bool = _AUTO,
    json_out: bool = typer.Option(False, "--json", help="After the command, print a JSON summary on stderr."),
):
    """Run a command with every BLAS/OpenMP thread variable set; its exit status is passed through."""
    import json
    import sys

    from blastune.control.run import resolve_threads, run

    n, _ = resolve_threads(threads, jobs, auto)
    result = run(command or [], n)
    if json_out:
        print(json.dumps(result.to_dict()), file=sys.stderr)
    raise typer.Exit(result.exit_status)
