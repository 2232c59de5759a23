"""``blastune slurm``: an sbatch job-array script whose tasks cap BLAS threads at their cores."""

from __future__ import annotations

from pathlib import Path

import typer

from blastune.cli import app
from blastune.cli.render import emit_json, force_option, json_option, notice, out_option


@app.command("slurm", context_settings={"allow_interspersed_args": False})
def slurm_command(
    command: list[str] = typer.Argument(
        None,
        metavar="-- CMD [ARGS]...",
        help="The command each array task runs; {task} in an argument "
        "becomes the array index, {threads} the thread count.",
    ),
    tasks: int = typer.Option(
        ..., "--tasks", "-n", metavar="N", help="Number of array tasks (--array=0-(N-1))."
    ),
    cpus_per_task: int = typer.Option(
        None,
        "--cpus-per-task",
        "-c",
        metavar="T",
        help="Cores (= BLAS threads) per task. [default: 1]",
    ),
    auto: bool = typer.Option(
        False,
        "--auto",
        help="Cores per task from the saved recommendation (else this machine's usable cores).",
    ),
    time: str = typer.Option(
        None,
        "--time",
        metavar="TIME",
        help="Wall-clock limit: MM, HH:MM:SS, D-HH:MM, ..., e.g. 01:30:00.",
    ),
    mem: str = typer.Option(
        None, "--mem", metavar="SIZE", help="Memory per task, e.g. 4G (K, M, G, T)."
    ),
    job_name: str = typer.Option(
        None,
        "--job-name",
        metavar="NAME",
        help="Job name; also names the output files. [default: blastune]",
    ),
    partition: str = typer.Option(
        None, "--partition", "-p", metavar="NAME", help="Slurm partition (or a list)."
    ),
    account: str = typer.Option(
        None, "--account", "-A", metavar="NAME", help="Slurm account to charge."
    ),
    max_running: int = typer.Option(
        None,
        "--max-running",
        metavar="M",
        help="Run at most M array tasks at once (--array=0-(N-1)%M).",
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        metavar="W",
        help="Each task runs W pinned copies of CMD at once (blastune run --copies W "
        "--pin), splitting its cores. [default: 1]",
    ),
    out: Path = out_option("Write the script to FILE (executable) instead of printing it."),
    force: bool = force_option("With --out: replace an existing file."),
    json_out: bool = json_option("Print the settings and the script as JSON."),
):
    """A Slurm job-array script whose tasks cap their BLAS threads.

    Every array task exports the BLAS thread variables from its allocation at run time
    (SLURM_CPUS_PER_TASK, else SLURM_JOB_CPUS_PER_NODE), then runs CMD (SLURM_ARRAY_TASK_ID is in
    its environment). The array size is checked against the cluster's MaxArraySize. Example:

    \b
      blastune slurm --tasks 100 -c 4 -- python fit.py --seed={task} > fit.sbatch
    """
    from blastune.integrations.slurm import slurm_script

    script = slurm_script(
        tasks,
        command or [],
        cpus_per_task,
        auto=auto,
        time=time,
        mem=mem,
        job_name=job_name,
        partition=partition,
        account=account,
        max_running=max_running,
        workers=workers,
    )
    for warning in script.warnings:
        notice(warning, "warning")
    if out is not None:
        _write_script(out, script.text, force)
    if json_out:
        emit_json(
            {
                "schema": "blastune.slurm/1",
                **script.to_dict(),
                "written_to": str(out) if out else None,
            }
        )
    elif out is not None:
        cores = f"{script.cpus_per_task} core" + ("s" if script.cpus_per_task != 1 else "")
        typer.echo(f"wrote {out} ({script.tasks} array task(s) x {cores}): sbatch {out}", err=True)
    else:
        typer.echo(script.text, nl=False)


def _write_script(path: Path, text: str, force: bool) -> None:
    """Write beside the target and rename, so an interrupted write never leaves half a script.

    A file the user already has is kept unless --force (there is nothing to resume in a script);
    a file another blastune run owns is refused, --force or not (blastune.core.files).
    """
    from blastune.errors import BlastuneError
    from blastune.core.files import check_output, write_output

    path = Path(path)
    if path.is_dir():
        raise BlastuneError(f"{path} is a directory: give a file name for the script")
    if path.exists() and not force:
        raise BlastuneError(f"{path} already exists: pass --force to replace it")
    check_output(path, force=True, what="script")
    write_output(path, text, what="script", mode=0o755)
