"""Slurm job-array scripts whose tasks cap BLAS threads at the cores Slurm gave them.

``slurm_script(tasks=8, command=["python", "fit.py", "--seed={task}"], cpus_per_task=2)`` returns a
``SlurmScript`` whose ``text`` is a complete ``sbatch`` script:

  * ``#SBATCH --array=0-7`` (``%M`` with ``max_running``), ``--cpus-per-task=2``, and --partition,
    --account, --time, --mem, --job-name when given;
  * a body that takes the thread count from the allocation *at run time* -- ``SLURM_CPUS_PER_TASK``,
    else this node's entry of ``SLURM_JOB_CPUS_PER_NODE``, else (outside Slurm) the number the
    script was written with -- never from the login node that generated it, and exports every
    variable of ``blastune.facts.environment.THREAD_VARS`` with it;
  * the command, each argument quoted with ``shlex.quote``. The command sees ``SLURM_ARRAY_TASK_ID``
    in its environment; ``{task}`` inside an argument expands to it and ``{threads}`` to the thread
    count, without opening the argument to the shell otherwise.
  * ``workers=W``: the task runs W copies of the command at once through
    ``blastune run --copies W --pin`` (each worker on its own cores of the allocation, threads = its
    cores, ``BLASTUNE_JOB_INDEX`` = 0..W-1), launched with ``srun --cpu-bind=cores`` inside a job.

The array size is checked against the cluster's ``MaxArraySize`` (``scontrol show config``) when
``scontrol`` answers within ``SCONTROL_TIMEOUT_S``; otherwise a size above Slurm's default (1001)
is a warning, not an error, and says why scontrol could not tell.

``slurm_threads_lines`` (control/exports.py) is the one rule for "threads from the allocation": the
job-array script and ``blastune env --shell slurm`` both print it.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field

from blastune.control.exports import slurm_threads_lines
from blastune.errors import BlastuneError

# Slurm's --time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S (and "infinite"/"UNLIMITED")
_TIME = re.compile(
    r"^(\d+-\d{1,2}(:\d{1,2}(:\d{1,2})?)?|\d+(:\d{1,2}(:\d{1,2})?)?|infinite|unlimited)$", re.I
)
_MEM = re.compile(r"^\d+[KMGT]?$", re.I)
# nothing that could end an #SBATCH line or need quoting
_NAME = re.compile(r"^[A-Za-z0-9._+-]{1,128}$")
_PARTITION = re.compile(r"^[A-Za-z0-9._-]{1,64}(,[A-Za-z0-9._-]{1,64})*$")  # sbatch takes a list
PLACEHOLDERS = {"{task}": '"${SLURM_ARRAY_TASK_ID}"', "{threads}": '"${BLASTUNE_THREADS}"'}
DEFAULT_MAX_ARRAY_SIZE = 1001  # slurm.conf's default MaxArraySize
SLURM_MAX_ARRAY_SIZE = 4000001  # the ceiling slurm.conf accepts for MaxArraySize
# A controller that answers at all answers `show config` in milliseconds; an unreachable one makes
# scontrol retry for about MessageTimeout (10 s by default) -- too long to hold up every command.
SCONTROL_TIMEOUT_S = 2.0


@dataclass
class SlurmScript:
    tasks: int
    cpus_per_task: int
    cpus_basis: str  # where cpus_per_task came from
    command: list[str]
    time: str | None
    mem: str | None
    job_name: str
    text: str
    partition: str | None = None
    account: str | None = None
    max_running: int | None = None
    workers: int = 1
    max_array_size: int | None = None  # the cluster's, when scontrol told us
    max_array_size_source: str = "unknown"
    warnings: list[str] = field(default_factory=list)

    def to_dict(self):
        return asdict(self)


def quote_command(command: list[str]) -> str:
    """shlex-quote each argument; ``{task}``/``{threads}`` become double-quoted variable
    expansions."""
    words = []
    for arg in command:
        pieces = re.split(r"(\{task\}|\{threads\})", arg)
        word = "".join(PLACEHOLDERS.get(p, shlex.quote(p) if p else "") for p in pieces)
        words.append(word or "''")
    return " ".join(words)


def max_array_size(timeout: float = SCONTROL_TIMEOUT_S) -> tuple[int | None, str]:
    """The cluster's MaxArraySize from ``scontrol show config``; (None, why) when scontrol cannot
    say."""
    exe = shutil.which("scontrol")
    if exe is None:
        return None, "scontrol not found"
    try:
        res = subprocess.run(
            [exe, "show", "config"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return None, (
            f"scontrol show config did not answer within {timeout:g} s: is slurmctld reachable?"
        )
    except OSError as exc:
        return None, f"cannot run {exe}: {exc.strerror or exc}"
    if res.returncode != 0:
        said = next((ln.strip() for ln in res.stderr.splitlines() if ln.strip()), "no message")
        return None, f"scontrol show config failed (exit status {res.returncode}): {said}"
    m = re.search(r"^\s*MaxArraySize\s*=\s*(\d+)\s*$", res.stdout, re.M)
    if m is None:
        return None, "scontrol show config printed no MaxArraySize line"
    return int(m.group(1)), "scontrol show config"


def _blastune_on_path_lines() -> list[str]:
    """The job runs ``blastune`` from its PATH (sbatch passes the submitting shell's environment):
    stop at once, saying so, when it is not there -- not after the allocation's first srun."""
    wrote = shutil.which("blastune") or f"{sys.executable} -m blastune"
    wrote = "".join(c if c.isprintable() else "?" for c in wrote)  # a newline would end the comment
    return [
        f"# Workers start through blastune from PATH (this script was written by {wrote}).",
        "if ! command -v blastune >/dev/null 2>&1; then",
        '    echo "blastune: blastune is not on PATH in this job; activate the environment that'
        ' has it before sbatch (the job inherits PATH) or add its bin directory to PATH here" >&2',
        "    exit 2",
        "fi",
    ]


def slurm_script(
    tasks: int,
    command: list[str],
    cpus_per_task: int | None = None,
    *,
    auto: bool = False,
    time: str | None = None,
    mem: str | None = None,
    job_name: str | None = None,
    partition: str | None = None,
    account: str | None = None,
    max_running: int | None = None,
    workers: int | None = None,
    array_limit: tuple[int | None, str] | None = None,
) -> SlurmScript:
    """``array_limit``: (MaxArraySize, source) to check against; default: ask ``scontrol``."""
    from blastune import __version__
    from blastune.core.counts import check_count, check_threads
    from blastune.control.exports import slurm_header
    from blastune.facts.environment import THREAD_VARS

    check_count(tasks, "--tasks", hi=SLURM_MAX_ARRAY_SIZE)
    if not command:
        raise BlastuneError(
            "no command given: put it after --, e.g. blastune slurm --tasks 4 -- python run.py"
        )
    if auto and cpus_per_task is not None:
        raise BlastuneError("give --cpus-per-task or --auto, not both")
    workers = 1 if workers is None else check_count(workers, "--workers")
    if auto:
        # cores per task for one job: the saved profile's entry, else this machine's usable cores
        # -- the same call ``blastune run --auto`` and ``blastune env --auto`` make
        from blastune.control.profile import auto_threads

        n, reason = auto_threads(None)
        cpus, basis = max(int(n), workers), f"--auto: {reason}"
    elif cpus_per_task is not None:
        # the thread variables' own check (whole number, fits the C int every BLAS thread API takes)
        cpus, basis = check_threads(cpus_per_task, "--cpus-per-task"), "--cpus-per-task"
    elif workers == 1:
        cpus, basis = 1, "default: one core per task (pass --cpus-per-task or --auto)"
    else:
        cpus, basis = workers, "default: one core per worker (pass --cpus-per-task)"
    if workers > cpus:
        raise BlastuneError(
            f"--workers {workers} needs at least {workers} cores per task: --cpus-per-task is "
            f"{cpus}"
        )
    if max_running is not None:
        check_count(max_running, "--max-running")
    job_name = "blastune" if job_name is None else job_name
    plain = "use letters, digits, '.', '_' or '-'"
    for what, value, pattern, allowed in (
        ("--time", time, _TIME, "use MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"),
        ("--mem", mem, _MEM, "a whole number with an optional K, M, G or T suffix, e.g. 4G"),
        ("--job-name", job_name, _NAME, "use 1 to 128 letters, digits, '.', '_', '+' or '-'"),
        ("--partition", partition, _PARTITION, plain + " (a comma-separated list)"),
        ("--account", account, _NAME, plain),
    ):
        if value is not None and not pattern.match(value):
            raise BlastuneError(f"invalid {what} {value!r}: {allowed}")

    warnings = []
    limit, limit_src = array_limit if array_limit is not None else max_array_size()
    if limit is not None:
        if tasks > limit:  # indices 0..tasks-1 must stay below MaxArraySize
            raise BlastuneError(
                f"--tasks {tasks} needs array indices up to {tasks - 1}, but this cluster's "
                f"MaxArraySize is {limit} ({limit_src}): indices must stay below it; split the "
                f"work into arrays of at most {limit} tasks"
            )
    elif tasks > DEFAULT_MAX_ARRAY_SIZE:
        warnings.append(
            f"--tasks {tasks} is above Slurm's default MaxArraySize of {DEFAULT_MAX_ARRAY_SIZE} "
            f"and the cluster's limit is unknown here ({limit_src}): sbatch rejects the array if "
            "MaxArraySize is lower; check with scontrol show config | grep MaxArraySize"
        )

    array = f"0-{tasks - 1}" + (f"%{max_running}" if max_running else "")
    directives = [
        f"#SBATCH --job-name={job_name}",
        f"#SBATCH --array={array}",
        "#SBATCH --ntasks=1",
        slurm_header(cpus),
    ]
    given = {"partition": partition, "account": account, "time": time, "mem": mem}
    directives += [f"#SBATCH --{name}={value}" for name, value in given.items() if value]
    directives.append(f"#SBATCH --output={job_name}_%A_%a.out")

    body = slurm_threads_lines(cpus) + [f'export {var}="$BLASTUNE_THREADS"' for var in THREAD_VARS]
    body.append('export SLURM_ARRAY_TASK_ID="${SLURM_ARRAY_TASK_ID:-0}"')
    if workers == 1:
        what = f"{tasks} array task(s), each capping its BLAS/OpenMP threads"
        body += [
            'echo "blastune: array task ${SLURM_ARRAY_TASK_ID}: ${BLASTUNE_THREADS} BLAS '
            'thread(s)" >&2',
            "",
            quote_command(command),
        ]
    else:
        what = f"{tasks} array task(s), each running {workers} pinned workers"
        runner = f"blastune run --copies {workers} --pin --"
        body = (
            _blastune_on_path_lines()
            + body
            + [
                f'echo "blastune: array task ${{SLURM_ARRAY_TASK_ID}}: {workers} workers on '
                '${BLASTUNE_THREADS} CPU(s), each pinned to its own cores" >&2',
                "# srun binds the step to the allocation's cores; blastune splits them among the "
                "workers",
                "# (each gets its own cores, OMP_PLACES and as many BLAS threads; "
                "BLASTUNE_JOB_INDEX = 0..W-1).",
                'if [ -n "${SLURM_JOB_ID:-}" ] && command -v srun >/dev/null 2>&1; then',
                '    LAUNCH=(srun --ntasks=1 --cpus-per-task="$BLASTUNE_THREADS" --cpu-bind=cores)',
                "else",
                "    LAUNCH=()",
                "fi",
                "",
                # (${A[@]+"${A[@]}"}: an empty array under set -u, which bash before 4.4 calls
                # unbound)
                f'${{LAUNCH[@]+"${{LAUNCH[@]}}"}} {runner} {quote_command(command)}',
            ]
        )
    text = "\n".join(
        [
            "#!/bin/bash",
            *directives,
            f"# Written by blastune {__version__}: {what}",
            "# at the cores Slurm gives it, so tasks sharing a node do not oversubscribe.",
            "set -euo pipefail",
            "",
            *body,
            "",
        ]
    )
    return SlurmScript(
        tasks=tasks,
        cpus_per_task=cpus,
        cpus_basis=basis,
        command=list(command),
        time=time,
        mem=mem,
        job_name=job_name,
        text=text,
        partition=partition,
        account=account,
        max_running=max_running,
        workers=workers,
        max_array_size=limit,
        max_array_size_source=limit_src,
        warnings=warnings,
    )
