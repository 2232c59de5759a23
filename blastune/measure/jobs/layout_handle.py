"""blastune's handle on the process that runs one layout (``layout_process.py``): start it, ask,
end it.

Requests and replies travel over two private pipes; stdin, stdout and stderr stay the user's (a
task's prints go where blastune's go). If the host dies -- the user's function called ``os._exit``
or crashed in C code -- the next reply is end-of-file and ``HostCrashed`` names the layout and the
exit status or signal in one line. ``close`` ends the host politely; ``abort`` (Ctrl-C, SIGTERM, an
error elsewhere) sends SIGTERM, waits a moment, then SIGKILL -- and always reaps it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from blastune.errors import BlastuneError
from blastune.measure.children import reap

POLL_S = 0.5  # how often a waiting request looks at the host (signals are handled meanwhile)
ABORT_GRACE_S = 3.0  # a host gets this long to end its workers after SIGTERM before SIGKILL


# what a process gets from the kernel (or abort()) when its own C code fails
CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT)


class HostCrashed(BlastuneError):
    """The process running a layout died (os._exit, a segfault, the OOM killer)."""


def exit_text(code: int | None) -> str:
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        crash = -code in CRASH_SIGNALS
        return f"killed by {name}" + (" (a crash in C code)" if crash else "")
    return f"exit status {code}"


class LayoutHost:
    def __init__(self, layout):
        from multiprocessing.connection import Connection

        self.layout = layout
        cmd_r, cmd_w = os.pipe()
        rep_r, rep_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "blastune.measure.jobs.layout_process",
                    str(cmd_r),
                    str(rep_w),
                    str(os.getpid()),
                ],
                pass_fds=(cmd_r, rep_w),
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        except OSError as exc:
            for fd in (cmd_r, cmd_w, rep_r, rep_w):
                os.close(fd)
            raise BlastuneError(
                f"cannot start a process for layout {layout.spec}: {exc.strerror or exc}"
            ) from None
        os.close(cmd_r)
        os.close(rep_w)
        self.cmd = Connection(cmd_w, readable=False)
        self.reply = Connection(rep_r, writable=False)
        self.pids: list[int] = []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _crashed(self, what: str) -> HostCrashed:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        where = "a worker of" if self.layout.executor == "process" else "the process running"
        return HostCrashed(
            f"layout {self.layout.spec}: {where} it died while {what} ({exit_text(code)}): "
            "the task function ended its process (os._exit) or crashed"
        )

    def ask(self, what: str, *msg):
        """Send one request, wait for its reply (however long the batch), return its value."""
        try:
            self.cmd.send(msg)
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise self._crashed(what) from None
        while True:
            try:
                if self.reply.poll(POLL_S):
                    status, value = self.reply.recv()
                    break
            except (EOFError, ConnectionResetError, OSError):
                raise self._crashed(what) from None
            if self.proc.poll() is not None and not self.reply.poll(0):
                raise self._crashed(what)
        if status == "error":
            raise BlastuneError(value)
        return value

    def start(self, workload, cores: int) -> dict:
        out = self.ask("starting", "start", self.layout, workload, cores, list(sys.path))
        self.pids = [self.proc.pid, *out.get("pids", [])]
        return out

    def calibrate(self, target: float) -> dict:
        return self.ask("calibrating", "calibrate", target)

    def batch(self, tasks: int) -> dict:
        return self.ask("running a batch", "batch", tasks)

    def close(self) -> None:
        try:
            self.ask("closing", "close")
        except BlastuneError:
            pass
        self.reap()

    def abort(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except OSError:
                pass

    def reap(self) -> None:
        """Wait for the host to end (it was asked to), SIGKILL after ``ABORT_GRACE_S``, close the
        pipes; a stop signal meanwhile is raised once the host is collected (``children.reap``)."""
        try:
            reap(self.proc, ABORT_GRACE_S, terminate=False)
        finally:
            for conn in (self.cmd, self.reply):
                try:
                    conn.close()
                except OSError:
                    pass

    @staticmethod
    def abort_all(hosts) -> None:
        """SIGTERM to every host at once (each ends its workers), then reap them all -- all of
        them, even when a stop signal comes meanwhile (raised once the last one is collected)."""
        hosts = list(hosts)
        for h in hosts:
            h.abort()
        stop = None
        for h in hosts:
            try:
                h.reap()
            except KeyboardInterrupt as exc:
                stop = stop or exc
        if stop is not None:
            raise stop
