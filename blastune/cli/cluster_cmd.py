"""``blastune slurm``: a ready sbatch job-array script whose tasks cap BLAS threads at their cores."""
from __future__ import annotations

from pathlib import Path

import typer

from blastune.cli import app


@app.command("slurm", context_settings={"allow_interspersed_args": False})
def slurm_command(
    command: list[str] = typer.Argument(None, metavar="-- CMD [ARGS]...",
                                        help="The command each array task runs; {task} in an argument "
                                             "becomes the array index, {threads} the thread count."),
    tasks: int = typer.Option(..., "--tasks", "-n", help="Number of array tasks (--array=0-(N-1))."),
    cpus_per_task: int = typer.Option(None, "--cpus-per-task", "-c",
                                      help="Cores (= BLAS threads) per task. Default 1."),
    auto: bool = typer.Option(False, "--auto", help="Cores per task from the saved recommendation "
                                                     "(else this machine's usable cores)."),
    time: str = typer.Option(None, "--time", help="Wall-clock limit, e.g. 01:30:00."),
    mem: str = typer.Option(None, "--mem", help="Memory per task, e.g. 4G."),
    job_name: str = typer.Option(None, "--job-name", help="Job name (default blastune)."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the script to FILE instead of printing it."),
    force: bool = typer.Option(False, "--force", help="With --out: replace an existing file."),
    json_out: bool = typer.Option(False, "--json", help="Print the settings and the script as JSON."),
):
    """Print an sbatch job-array script: every task exports the BLAS thread variables from
    SLURM_CPUS_PER_TASK, then runs CMD (SLURM_ARRAY_TASK_ID is in its environment)."""
    from blastune.slurm import slurm_script

    script = slurm_script(tasks, command or [], cpus_per_task, auto=auto, time=time, mem=mem, job_name=job_name)
    if out is not None:
        from blastune.results import check_writable_new

        check_writable_new(out, force=force)
        _write_script(out, script.text)
    if json_out:
        from blastune.cli.render import emit_json

        emit_json({"schema": "blastune.slurm/1", **script.to_dict(), "written_to": str(out) if out else None})
    elif out is not None:
        typer.echo(f"wrote {out} ({script.tasks} tasks x {script.cpus_per_task} cores): sbatch {out}", err=True)
    else:
        typer.echo(script.text, nl=False)


def _write_script(path: Path, text: str) -> None:
    """Write beside the target and rename, so an interrupted write never leaves half a script."""
    import os
    import tempfile

    from blastune.errors import BlastuneError

    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    except OSError as exc:
        raise BlastuneError(f"cannot write {path}: {exc.strerror}") from None
