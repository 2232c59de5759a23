"""Exports for job scripts: each shell is one row of ``SHELLS``, and ``render_exports`` writes any
of them (and, given CPUs, the line that pins the shell itself to them)."""

from __future__ import annotations

import json
import shlex
from typing import Callable, NamedTuple

from blastune.errors import BlastuneError
from blastune.facts.topology import format_cpulist


def slurm_header(threads: int) -> str:
    return f"#SBATCH --cpus-per-task={threads}"


def slurm_threads_lines(fallback: int) -> list[str]:
    """Shell lines that set BLASTUNE_THREADS from the allocation Slurm gave this job at run time.

    SLURM_CPUS_PER_TASK (set when the job asked for --cpus-per-task), else this node's entry of
    SLURM_JOB_CPUS_PER_NODE (always set in a job), else ``fallback`` outside Slurm; a value no BLAS
    can take stops the job (exit 2) before anything runs with it."""
    return [
        "# Threads come from the allocation at run time, not from the login node this was written "
        "on:",
        "# SLURM_CPUS_PER_TASK, else this node's SLURM_JOB_CPUS_PER_NODE ('16(x2),8' -> 16), else "
        "(outside",
        f"# Slurm) {fallback}, the count this was written with.",
        'if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then',
        '    BLASTUNE_THREADS="$SLURM_CPUS_PER_TASK"',
        'elif [ -n "${SLURM_JOB_CPUS_PER_NODE:-}" ]; then',
        '    BLASTUNE_THREADS="${SLURM_JOB_CPUS_PER_NODE%%[(,]*}"',
        "else",
        f"    BLASTUNE_THREADS={fallback}",
        "fi",
        'case "$BLASTUNE_THREADS" in',
        "    ''|*[!0-9]*|0*) echo \"blastune: cannot read a CPU count from Slurm: "
        "'$BLASTUNE_THREADS'\" >&2; exit 2 ;;",
        "esac",
    ]


def _slurm(env) -> str:
    # Inside a Slurm job the allocation, not the number we were given, is the truth: the same rule
    # as `blastune slurm`'s scripts, falling back to our number outside Slurm.
    n = int(next(iter(env.values())))
    lines = [slurm_header(n), *slurm_threads_lines(n)]
    lines += [f'export {k}="$BLASTUNE_THREADS"' for k in env]
    return "\n".join(lines)


class Shell(NamedTuple):
    """How one shell (or file format) is written: ``line`` sets one variable (``{k}`` its name,
    ``{v}`` its value, ``{q}`` the value quoted for a POSIX-like shell), ``sep`` joins the lines,
    and ``pin`` pins the shell itself to ``{cpus}`` so that every command it starts inherits them
    (None where a format cannot). ``render`` writes the formats that are not a line per variable."""

    line: str | None
    pin: str | None = None
    sep: str = "\n"
    render: Callable[[dict[str, str]], str] | None = None


_POSIX = Shell("export {k}={q}", "taskset -cp {cpus} $$ >/dev/null")
_CSH = Shell("setenv {k} {q};", "taskset -cp {cpus} $$ >/dev/null")
_POWERSHELL = Shell("$env:{k} = '{v}'")
SHELLS = {
    "bash": _POSIX,
    "zsh": _POSIX,
    "sh": _POSIX,
    "fish": Shell("set -gx {k} {q};", "taskset -cp {cpus} $fish_pid >/dev/null;"),
    "csh": _CSH,
    "tcsh": _CSH,
    "powershell": _POWERSHELL,
    "pwsh": _POWERSHELL,
    "cmd": Shell("set {k}={v}"),
    "dotenv": Shell("{k}={v}"),
    "docker": Shell("-e {k}={q}", "--cpuset-cpus={cpus}", sep=" "),
    "slurm": Shell(None, render=_slurm),  # env --pin refuses it: a script runs on another machine
    "json": Shell(None, render=lambda env: json.dumps(env, indent=2)),
}


def check_shell(shell) -> str:
    """``shell`` if it is one of ``SHELLS``; anything else (the empty name too): one error line."""
    if shell not in SHELLS:
        raise BlastuneError(f"unknown shell {shell!r}: choose one of {', '.join(SHELLS)}")
    return shell


def render_exports(env: dict[str, str], shell: str = "bash", cpus=None) -> str:
    """``env`` as ``shell`` sets it; with ``cpus``, followed by the line that pins the shell to them
    where the shell has one."""
    form = SHELLS[check_shell(shell)]
    if form.render is not None:
        text = form.render(env)
    else:
        text = form.sep.join(form.line.format(k=k, v=v, q=shlex.quote(v)) for k, v in env.items())
    if cpus and form.pin:
        text += form.sep + form.pin.format(cpus=format_cpulist(cpus))
    return text
