"""Exports for job scripts: each shell gets one small renderer; ``render_exports`` picks it from
``SHELLS``."""

from __future__ import annotations

import json
import shlex

from blastune.errors import BlastuneError


def _posix(env):
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())


def _fish(env):
    return "\n".join(f"set -gx {k} {shlex.quote(v)};" for k, v in env.items())


def _csh(env):
    return "\n".join(f"setenv {k} {shlex.quote(v)};" for k, v in env.items())


def _powershell(env):
    return "\n".join(f"$env:{k} = '{v}'" for k, v in env.items())


def _cmd(env):
    return "\n".join(f"set {k}={v}" for k, v in env.items())


def _dotenv(env):
    return "\n".join(f"{k}={v}" for k, v in env.items())


def _docker(env):
    return " ".join(f"-e {k}={shlex.quote(v)}" for k, v in env.items())


def _json(env):
    return json.dumps(env, indent=2)


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


def _slurm(env):
    # Inside a Slurm job the allocation, not the number we were given, is the truth: the same rule
    # as `blastune slurm`'s scripts, falling back to our number outside Slurm.

    n = int(next(iter(env.values())))
    lines = [slurm_header(n), *slurm_threads_lines(n)]
    lines += [f'export {k}="$BLASTUNE_THREADS"' for k in env]
    return "\n".join(lines)


SHELLS = {
    "bash": _posix,
    "zsh": _posix,
    "sh": _posix,
    "fish": _fish,
    "csh": _csh,
    "tcsh": _csh,
    "powershell": _powershell,
    "pwsh": _powershell,
    "cmd": _cmd,
    "dotenv": _dotenv,
    "docker": _docker,
    "slurm": _slurm,
    "json": _json,
}


def check_shell(shell) -> str:
    """``shell`` if it is one of ``SHELLS``; anything else (the empty name too): one error line."""
    if shell not in SHELLS:
        raise BlastuneError(f"unknown shell {shell!r}: choose one of {', '.join(SHELLS)}")
    return shell


def render_exports(env: dict[str, str], shell: str = "bash") -> str:
    return SHELLS[check_shell(shell)](env)
