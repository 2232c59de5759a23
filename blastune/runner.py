"""``blastune run``: start a command with every BLAS/OpenMP thread variable set, as a job script would.

The child gets its own process; SIGINT/SIGTERM sent to us are passed on to it, and its exit status
comes back unchanged (a child killed by signal N gives 128 + N, as a shell reports it).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import asdict, dataclass

from blastune.envvars import thread_env
from blastune.errors import BlastuneError


@dataclass
class RunResult:
    command: list[str]
    threads: int
    env: dict[str, str]
    exit_status: int

    def to_dict(self):
        return asdict(self)


def resolve_threads(threads: int | None = None, jobs: int | None = None, auto: bool = False) -> tuple[int, str]:
    """One thread count from -t N, --jobs N or --auto (--auto --jobs N: the recommendation for N jobs),
    with the reason (shown by env/run)."""
    if threads is not None and (jobs is not None or auto):
        raise BlastuneError("give only one of --threads, --jobs and --auto (--auto may take --jobs)")
    from blastune.cpu import usable_cores

    cores, basis = usable_cores()
    if threads is not None:
        return threads, "asked for"
    if not auto:
        return max(1, cores // jobs), f"{cores} usable cores ({basis}) // {jobs} jobs"
    try:
        from blastune.profile import auto_threads
    except ImportError:
        n = max(1, cores // (jobs or 1))
        return n, f"{cores} usable cores ({basis}) // {jobs or 1} job(s); no saved recommendation"
    return auto_threads(jobs)


def run(command: list[str], threads: int) -> RunResult:
    if not command:
        raise BlastuneError("no command given: use blastune run -t N -- CMD ARGS...")
    if shutil.which(command[0]) is None and not os.path.exists(command[0]):
        raise BlastuneError(f"command not found: {command[0]}")
    env = thread_env(threads)
    child = subprocess.Popen(command, env={**os.environ, **env})

    def forward(signum, _frame):
        child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return RunResult(command=list(command), threads=threads, env=env,
                     exit_status=128 - status if status < 0 else status)
