"""``blastune run``: start a command with every BLAS/OpenMP thread variable set, as a job script would.

The child gets its own process; SIGINT/SIGTERM sent to us are passed on to it (a Ctrl-C at the
terminal reaches it once, not twice), and its exit status comes back unchanged (a child killed by
signal N gives 128 + N, as a shell reports it).
"""
from __future__ import annotations

import errno
import os
import signal
import subprocess
from dataclasses import asdict, dataclass

from blastune.facts.environment import thread_env
from blastune.errors import BlastuneError


@dataclass
class RunResult:
    command: list[str]
    threads: int
    env: dict[str, str]
    exit_status: int

    def to_dict(self):
        return {"schema": "blastune.run/1", **asdict(self)}


def resolve_threads(threads: int | None = None, jobs: int | None = None, auto: bool = False) -> tuple[int, str]:
    """One thread count from -t N, --jobs N or --auto (--auto --jobs N: the recommendation for N jobs),
    with the reason (shown by env/run). Neither -t nor --jobs means --auto."""
    if threads is not None and (jobs is not None or auto):
        raise BlastuneError("give only one of --threads, --jobs and --auto (--auto may take --jobs)")
    if threads is not None:
        return threads, "asked for"
    if auto or jobs is None:
        from blastune.control.profile import auto_threads

        return auto_threads(jobs)
    from blastune.facts.cpu import usable_cores

    cores, basis = usable_cores()
    return max(1, cores // jobs), f"{cores} usable cores ({basis}) // {jobs} jobs"


def _launch_error(cmd: str, exc: OSError) -> str:
    """One line saying why ``cmd`` could not start, in the words a shell would use."""
    if isinstance(exc, FileNotFoundError) and os.sep not in cmd:
        here = f"; for the file in this directory use ./{cmd}" if os.path.isfile(cmd) else ""
        return f"command not found: {cmd} (not on PATH{here})"
    if os.path.isdir(cmd):
        return f"cannot run {cmd}: it is a directory"
    if isinstance(exc, PermissionError):
        return f"cannot run {cmd}: permission denied (is it executable? chmod +x {cmd})"
    if exc.errno == errno.ENOEXEC:
        return f"cannot run {cmd}: not a program the system can start (a script needs a #! line)"
    return f"cannot run {cmd}: {exc.strerror or exc}"


def run(command: list[str], threads: int) -> RunResult:
    if not command:
        raise BlastuneError("no command given: use blastune run -t N -- CMD ARGS...")
    env = thread_env(threads)
    try:
        child = subprocess.Popen(command, env={**os.environ, **env})
    except OSError as exc:
        raise BlastuneError(_launch_error(command[0], exc)) from None

    status = _wait_forwarding(child) if hasattr(signal, "sigtimedwait") else _wait_with_handlers(child)
    return RunResult(command=list(command), threads=threads, env=env,
                     exit_status=128 - status if status < 0 else status)


_FORWARDED = (signal.SIGINT, signal.SIGTERM)
_SI_KERNEL = 0x80  # si_code of a signal the kernel raised itself, e.g. the terminal's Ctrl-C


def _from_our_terminal(info, child) -> bool:
    """Ctrl-C/Ctrl-\\ reach the terminal's whole foreground process group: the child, in our
    group, already has it, and a second copy would interrupt its own clean-up."""
    try:
        return info.si_code == _SI_KERNEL and os.getpgid(child.pid) == os.getpgrp()
    except OSError:  # the child is gone
        return True


def _wait_forwarding(child) -> int:
    """Wait for the child, passing on SIGINT/SIGTERM sent to us (Linux: signals taken synchronously)."""
    waited = set(_FORWARDED) | {signal.SIGCHLD}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    try:
        while child.poll() is None:
            # SIGCHLD ends the wait as soon as the child exits; the timeout covers an exit that
            # happened before the mask was set.
            info = signal.sigtimedwait(waited, 0.5)
            if info is not None and info.si_signo in _FORWARDED and not _from_our_terminal(info, child):
                child.send_signal(info.si_signo)
        while signal.sigtimedwait(waited, 0) is not None:  # nothing left to fire once unblocked
            pass
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return child.returncode


def _wait_with_handlers(child) -> int:
    """Where there is no sigtimedwait (macOS): forward every SIGINT/SIGTERM from a handler."""
    def forward(signum, _frame):
        child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in _FORWARDED}
    try:
        return child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
