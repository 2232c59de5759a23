"""Exports for job scripts: each shell gets one small renderer; ``render_exports`` picks it from ``SHELLS``."""
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


def _slurm(env):
    # Inside a Slurm job the allocation, not the number we were given, is the truth: the same rule
    # as `blastune slurm`'s scripts, falling back to our number outside Slurm.
    from blastune.integrations.slurm import slurm_threads_lines

    n = int(next(iter(env.values())))
    lines = [slurm_header(n), *slurm_threads_lines(n)]
    lines += [f'export {k}="$BLASTUNE_THREADS"' for k in env]
    return "\n".join(lines)


SHELLS = {
    "bash": _posix, "zsh": _posix, "sh": _posix,
    "fish": _fish,
    "csh": _csh, "tcsh": _csh,
    "powershell": _powershell, "pwsh": _powershell,
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
