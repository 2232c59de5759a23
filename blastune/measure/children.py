"""Worker processes die with their parent, and are reaped on every exit path.

``die_with_parent`` runs first thing in a worker: on Linux it asks the kernel (``prctl
PR_SET_PDEATHSIG``) to SIGKILL us the moment the parent dies -- even by SIGKILL, when no clean-up of
the parent's can run; elsewhere a daemon thread watches ``getppid()``. ``reap`` is the parent's
half: terminate, wait, kill if need be, so no worker outlives the call that started it (sweep's
workers and jobs' layout processes alike).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

from blastune.core.lifetime import die_with, libc_prctl


def _watch_parent(parent_pid: int, interval: float = 0.5) -> None:
    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(interval)

    threading.Thread(target=watch, name="blastune-parent-watch", daemon=True).start()


def die_with_parent(parent_pid: int | None, sig: int = signal.SIGKILL) -> None:
    """Make this process end when ``parent_pid`` (the process that started it) ends.

    ``sig``: what the kernel sends then (SIGTERM lets a process that owns workers end them
    first)."""
    if not parent_pid:
        return
    if not die_with(libc_prctl(), parent_pid, sig):
        _watch_parent(parent_pid)  # checks at once: the parent may already be gone


def ignore_terminal_signals() -> None:
    """Ctrl-C and a closed terminal reach the whole foreground group: the parent decides what they
    mean and ends this process itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


def reap(proc: subprocess.Popen, grace: float = 5.0, *, terminate: bool = True) -> int:
    """End ``proc`` and collect it: SIGTERM (unless ``terminate`` is False: it was asked to end
    already), SIGKILL if it still runs after ``grace`` s, and always wait for it.

    A stop signal (KeyboardInterrupt) while we wait does not leave the process running or a zombie:
    it is killed and collected, and then the stop is raised -- never dropped (the run that called
    us would go on to ``complete`` and exit 0)."""
    stop = None
    try:
        if proc.poll() is None:
            try:
                if terminate:
                    proc.terminate()
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
            except OSError:
                pass
    except KeyboardInterrupt as exc:
        stop = exc
        _kill(proc)
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt as exc:  # another Ctrl-C: collect it all the same
            stop = stop or exc
            _kill(proc)
    if stop is not None:
        raise stop
    return code


def _kill(proc: subprocess.Popen) -> None:
    try:
        proc.kill()
    except OSError:
        pass
