"""SIGINT, SIGTERM and SIGHUP end ``jobs`` the same clean way.

Slurm, systemd and ``timeout`` send SIGTERM; closing a terminal sends SIGHUP; Ctrl-C sends SIGINT.
While a run is measuring, each raises ``JobsInterrupted`` in the main thread: the layout processes
and their workers are ended and reaped, the finished batches are kept (and saved with status
``interrupted`` when there is an output file), and the exit status is the shell's: 128 + the signal
(130, 143, 129). A second signal while that happens is absorbed: it must not interrupt the clean-up.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

STOP_SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s)


class JobsInterrupted(KeyboardInterrupt):
    """A signal stopped the run; ``result`` holds the finished batches (a ``JobsResult``) or None,
    ``saved_to`` the file they were saved to (or None)."""

    def __init__(self, signum: int = signal.SIGINT, result=None, saved_to=None):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.result = result
        self.saved_to = saved_to

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def _replaceable(handler) -> bool:
    """Would this handler end the process anyway (so taking it over changes nothing for the host app)?"""
    return handler in (signal.SIG_DFL, signal.default_int_handler, None)


@contextmanager
def stop_on_signals():
    """Inside: the first SIGINT/SIGTERM/SIGHUP raises ``JobsInterrupted``; later ones are absorbed.

    Only handlers that would end the process anyway are replaced (an application's own handlers are
    left alone), only on the main thread, and the previous handlers come back on exit."""
    state = {"signum": None}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        if state["signum"] is not None:
            return
        state["signum"] = signum
        raise JobsInterrupted(signum)

    previous = {}
    for sig in STOP_SIGNALS:
        try:
            if _replaceable(signal.getsignal(sig)):
                previous[sig] = signal.signal(sig, handler)
        except (OSError, ValueError):
            pass
    try:
        yield state
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
