"""SIGINT, SIGTERM and SIGHUP end a measurement (sweep or jobs) the same clean way.

Slurm, systemd and ``timeout`` send SIGTERM; closing a terminal sends SIGHUP; Ctrl-C sends SIGINT.
While a run measures, each of them raises an ``Interrupted`` (a KeyboardInterrupt, so the Ctrl-C
path is the only path) in the main thread: finished work is kept and saved with status
``interrupted``, thread settings are restored, workers are ended. A second signal within
``SECOND_SIGNAL_GRACE_S`` of the first (a double Ctrl-C) is absorbed: it must not interrupt the save
of the first. A later one ends the process at once -- the orderly stop may be stuck (a FIFO nobody
reads, a disk that hangs) -- leaving the files as last saved. The exit status is the shell's:
128 + the signal number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

from blastune.core.files import abandon_writes, defer_if_writing

# A second signal this soon after the first is the same request (a double key press, a signal sent
# to the process and to its group); later, it means "stop now, whatever the orderly stop awaits".
SECOND_SIGNAL_GRACE_S = 1.0
# The command line owns its process and ends it (``end_now``); in a host program (blastune.sweep()
# in a notebook) the later signal raises the interrupt again instead, ending whatever waits.
SECOND_SIGNAL_ENDS_PROCESS = False

STOP_SIGNALS = tuple(
    s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s
)


class Interrupted(KeyboardInterrupt):
    """A signal stopped the run; ``result`` holds what finished (or None), ``saved_to`` the file it
    was saved to (or None), ``save_error`` why the results file could not take it (or None)."""

    def __init__(self, signum: int = signal.SIGINT, result=None, saved_to=None):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.result = result
        self.saved_to = saved_to
        self.save_error: str | None = None

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class SweepInterrupted(Interrupted):
    """A signal stopped the sweep; ``result`` holds the finished points (a ``SweepResult``)."""


class JobsInterrupted(Interrupted):
    """A signal stopped ``jobs``: the layout processes and their workers were ended and reaped;
    ``result`` holds the finished batches (a ``JobsResult``) or None."""


class StopState:
    def __init__(self):
        self.signum: int | None = None
        self.since: float | None = None  # time.monotonic() of the first signal


def end_now(signum: int) -> None:
    """A second signal while stopping: no more waiting. Remove a temporary file of a write in
    progress and our lock sidecars, say so in one line, and exit 128 + signum at once."""
    abandon_writes()
    try:
        os.write(
            2,
            f"blastune: {signal.Signals(signum).name} again while stopping: ended at once; "
            "files are as last saved\n".encode(),
        )
    except OSError:
        pass
    os._exit(128 + signum)


# A stop raised while Python runs a __del__ or a weakref callback cannot unwind: Python would print
# "Exception ignored in ..." and carry on measuring, with later signals absorbed. The hook keeps it
# off stderr and remembers it; ``raise_pending`` raises it at the run's next step (a point, a
# batch).
_SWALLOWED: list[Interrupted] = []
# Every stop the handler took in this run, as (signum, class): the CLI's context and the library's
# nested one share it. Code between the handler and the run's own ``except`` can still drop a stop
# (a reaper finishing a worker, a library's bare ``except``); while a run goes on normally, a stop
# recorded here was dropped, and ``raise_pending`` raises it again -- before a point is called done
# and before a run is called complete (a dropped stop used to end a sweep ``complete``, exit 0).
_TAKEN: list[tuple[int, type]] = []
_DEPTH = [0]  # contexts open: the outermost one starts the records afresh


def _unraisable(info) -> None:
    if isinstance(info.exc_value, Interrupted):
        _SWALLOWED.append(info.exc_value)
        return
    sys.__unraisablehook__(info)


def raise_pending() -> None:
    """Raise a stop signal that arrived where it could not unwind (see ``_unraisable``) or that was
    dropped on its way (see ``_TAKEN``). Call it only where the run goes on normally."""
    if _SWALLOWED:
        raise _SWALLOWED.pop()
    if _TAKEN:
        signum, cls = _TAKEN[0]
        raise cls(signum)


def _would_end_the_process(handler) -> bool:
    """Would this handler end the process anyway (so taking it over changes nothing for the
    host)?"""
    return handler in (signal.SIG_DFL, signal.default_int_handler, None)


@contextmanager
def stop_on_signals(raise_as: type[Interrupted] = Interrupted):
    """Inside: the first SIGINT/SIGTERM/SIGHUP raises ``raise_as(signum)``; later ones are absorbed
    within ``SECOND_SIGNAL_GRACE_S``; after it they end the process at once (``end_now``, the
    command line) or raise again (a host program).

    Only handlers that would end the process anyway are replaced (a host program's own handlers are
    left alone), only on the main thread (Python delivers signals nowhere else), and the previous
    handlers come back on exit."""
    state = StopState()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        if state.signum is not None:
            if time.monotonic() - state.since >= SECOND_SIGNAL_GRACE_S:
                if SECOND_SIGNAL_ENDS_PROCESS:
                    end_now(signum)  # the orderly stop is taking too long for the user: stop now
                raise raise_as(signum)
            return  # already stopping: let the save of the finished work complete
        if defer_if_writing(lambda: handler(signum, frame)):
            return  # mid-write: raised the moment the file is whole (core/files.py)
        state.signum, state.since = signum, time.monotonic()
        _TAKEN.append((signum, raise_as))
        raise raise_as(signum)

    previous = {}
    if not _DEPTH[0]:
        _SWALLOWED.clear()
        _TAKEN.clear()
    _DEPTH[0] += 1
    hook, sys.unraisablehook = sys.unraisablehook, _unraisable
    for sig in STOP_SIGNALS:
        try:
            if _would_end_the_process(signal.getsignal(sig)):
                previous[sig] = signal.signal(sig, handler)
        except (OSError, ValueError):  # not settable here
            pass
    try:
        yield state
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        sys.unraisablehook = hook
        _DEPTH[0] -= 1
