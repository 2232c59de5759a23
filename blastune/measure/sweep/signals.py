"""SIGINT, SIGTERM and SIGHUP end a sweep the same clean way.

Slurm, systemd and ``timeout`` send SIGTERM; closing a terminal sends SIGHUP; Ctrl-C sends SIGINT.
While a sweep runs, each of them raises ``SweepInterrupted`` in the main thread -- the same path as
Ctrl-C -- so finished points are saved with status ``interrupted`` and thread settings are restored.
A second signal while that happens (a double Ctrl-C within a millisecond) is absorbed: it must not
interrupt the save of the first. The exit status is the shell's: 128 + the signal number (130 for
SIGINT, 143 for SIGTERM, 129 for SIGHUP).
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

STOP_SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s)


class SweepInterrupted(KeyboardInterrupt):
    """A signal stopped the sweep; ``result`` holds the finished points (a ``SweepResult``)."""

    def __init__(self, signum: int = signal.SIGINT, result=None):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.result = result

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class StopState:
    def __init__(self):
        self.signum: int | None = None


def _ours(handler) -> bool:
    """Would this handler end the process anyway (so taking it over changes nothing for the host)?"""
    return handler in (signal.SIG_DFL, signal.default_int_handler, None)


@contextmanager
def stop_on_signals():
    """Inside: the first SIGINT/SIGTERM/SIGHUP raises ``SweepInterrupted``; later ones are absorbed.

    Only handlers that would end the process anyway are replaced (a host program's own handlers are
    left alone), only on the main thread (Python delivers signals nowhere else), and the previous
    handlers come back on exit."""
    state = StopState()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        if state.signum is not None:
            return  # already stopping: let the save of the finished points complete
        state.signum = signum
        raise SweepInterrupted(signum)

    previous = {}
    for sig in STOP_SIGNALS:
        try:
            if _ours(signal.getsignal(sig)):
                previous[sig] = signal.signal(sig, handler)
        except (OSError, ValueError):  # not settable here
            pass
    try:
        yield state
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
