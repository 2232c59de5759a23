"""Slurm job-array scripts whose tasks cap BLAS threads at the cores Slurm gave them.

``slurm_script(tasks=8, command=["python", "fit.py", "--seed={task}"], cpus_per_task=2)`` returns a
``SlurmScript`` whose ``text`` is a complete ``sbatch`` script:

  * ``#SBATCH --array=0-7`` and ``--cpus-per-task=2`` (plus --time/--mem/--job-name when given);
  * a body that exports every variable of ``blastune.facts.environment.THREAD_VARS`` from
    ``SLURM_CPUS_PER_TASK`` -- inside the job the allocation, not the number we printed, is the truth --
    the same lines ``blastune env --shell slurm`` prints;
  * the command, each argument quoted with ``shlex.quote``. The command sees ``SLURM_ARRAY_TASK_ID``
    in its environment; ``{task}`` inside an argument expands to it and ``{threads}`` to the thread
    count, without opening the argument to the shell otherwise.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import asdict, dataclass

from blastune.errors import BlastuneError

# Slurm's --time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S (and "infinite"/"UNLIMITED")
_TIME = re.compile(r"^(\d+-\d{1,2}(:\d{1,2}(:\d{1,2})?)?|\d+(:\d{1,2}(:\d{1,2})?)?|infinite|unlimited)$", re.I)
_MEM = re.compile(r"^\d+[KMGT]?$", re.I)
_NAME = re.compile(r"^[A-Za-z0-9._+-]{1,128}$")  # nothing that could end an #SBATCH line or need quoting
PLACEHOLDERS = {"{task}": '"${SLURM_ARRAY_TASK_ID}"', "{threads}": '"${BLASTUNE_THREADS}"'}


@dataclass
class SlurmScript:
    tasks: int
    cpus_per_task: int
    cpus_basis: str        # where cpus_per_task came from
    command: list[str]
    time: str | None
    mem: str | None
    job_name: str
    text: str

    def to_dict(self):
        return asdict(self)


def quote_command(command: list[str]) -> str:
    """shlex-quote each argument; ``{task}``/``{threads}`` become double-quoted variable expansions."""
    words = []
    for arg in command:
        pieces = re.split(r"(\{task\}|\{threads\})", arg)
        word = "".join(PLACEHOLDERS.get(p, shlex.quote(p) if p else "") for p in pieces)
        words.append(word or "''")
    return " ".join(words)


def auto_cpus() -> tuple[int, str]:
    """Cores per task for one job: the saved profile's entry, else this machine's usable cores --
    the same call ``blastune run --auto`` and ``blastune env --auto`` make."""
    from blastune.control.profile import auto_threads

    n, reason = auto_threads(None)
    return int(n), f"--auto: {reason}"


def _check_count(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BlastuneError(f"invalid {what} {value!r}: must be a whole number >= 1")
    return value


def slurm_script(tasks: int, command: list[str], cpus_per_task: int | None = None, *, auto: bool = False,
                 time: str | None = None, mem: str | None = None, job_name: str | None = None) -> SlurmScript:
    from blastune import __version__
    from blastune.core.counts import check_threads
    from blastune.control.exports import render_exports, slurm_header
    from blastune.facts.environment import thread_env

    _check_count(tasks, "--tasks")
    if not command:
        raise BlastuneError("no command given: put it after --, e.g. blastune slurm --tasks 4 -- python run.py")
    if auto and cpus_per_task is not None:
        raise BlastuneError("give --cpus-per-task or --auto, not both")
    if auto:
        cpus, basis = auto_cpus()
    elif cpus_per_task is not None:
        # the thread variables' own check (whole number, fits the C int every BLAS thread API takes)
        cpus, basis = check_threads(cpus_per_task, "--cpus-per-task"), "--cpus-per-task"
    else:
        cpus, basis = 1, "default: one core per task (pass --cpus-per-task or --auto)"
    if time is not None and not _TIME.match(time):
        raise BlastuneError(f"invalid --time {time!r}: use MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS")
    if mem is not None and not _MEM.match(mem):
        raise BlastuneError(f"invalid --mem {mem!r}: a whole number with an optional K, M, G or T suffix, e.g. 4G")
    job_name = job_name or "blastune"
    if not _NAME.match(job_name):
        raise BlastuneError(f"invalid --job-name {job_name!r}: use at most 128 letters, digits, '.', '_', "
                            "'+' or '-'")

    directives = [f"#SBATCH --job-name={job_name}",
                  f"#SBATCH --array=0-{tasks - 1}",
                  "#SBATCH --ntasks=1",
                  slurm_header(cpus)]
    if time:
        directives.append(f"#SBATCH --time={time}")
    if mem:
        directives.append(f"#SBATCH --mem={mem}")
    directives.append(f"#SBATCH --output={job_name}_%A_%a.out")
    # the same exports as `blastune env --shell slurm`, minus its #SBATCH line (already above)
    exports = [line for line in render_exports(thread_env(cpus), "slurm").splitlines()
               if not line.startswith("#SBATCH")]
    text = "\n".join([
        "#!/bin/bash",
        *directives,
        f"# Written by blastune {__version__}: {tasks} array task(s), each capping its BLAS/OpenMP threads",
        "# at the cores Slurm gives it (SLURM_CPUS_PER_TASK), so tasks sharing a node do not oversubscribe.",
        "set -euo pipefail",
        "",
        *exports,
        'export SLURM_ARRAY_TASK_ID="${SLURM_ARRAY_TASK_ID:-0}"',
        'echo "blastune: array task ${SLURM_ARRAY_TASK_ID}: ${BLASTUNE_THREADS} BLAS thread(s)" >&2',
        "",
        quote_command(command),
        "",
    ])
    return SlurmScript(tasks=tasks, cpus_per_task=cpus, cpus_basis=basis, command=list(command), time=time,
                       mem=mem, job_name=job_name, text=text)
