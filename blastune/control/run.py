"""``blastune run``: start a command with every BLAS/OpenMP thread variable set, as a job script
would.

Two ways to run it:

* ``exec_command`` -- plain ``blastune run -t N -- CMD``: set the variables and *become* the command
  (``execvp``), as ``env``, ``nice`` and ``timeout`` do. Nothing stands between the command and its
  signals, its terminal or its exit status: every signal reaches it exactly as often as it was sent,
  and a command killed by signal N is seen killed by signal N.
* ``run`` -- ``--report`` or ``--json``: blastune stays as the parent, to measure the command and
  to speak after it. Then:

  - **exit status** passes through; a child killed by signal N gives 128 + N, as a shell reports it;
  - **signals** SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 sent to blastune are passed on to
    the child *once*:

    * when blastune is the foreground job of a terminal, the child stays in blastune's process
      group, so it keeps the terminal (it may read it; Ctrl-Z stops both). The terminal's own
      signals (Ctrl-C, Ctrl-\\, hang-up; ``si_code`` SI_KERNEL) already went to the whole group and
      are not passed on; signals from processes (``kill``) are. Left over: a ``kill`` aimed at that
      foreground group from outside reaches the child twice -- nothing in the signal tells
      ``kill(pid)`` and ``kill(-pgid)`` apart;
    * otherwise (scripts, ``timeout``, batch jobs, CI: no terminal to share) the child gets a
      process group of its own: a signal to blastune's group (``timeout``'s ``kill(0, sig)``,
      ``os.killpg``) cannot reach it directly, and blastune passes on each signal it gets. A burst
      of one signal from one sender within 50 ms counts once (``timeout`` signals blastune and then
      its group: two copies of one event; the kernel merges pending standard signals the same way);
  - **dying with blastune**: on Linux the child gets ``PR_SET_PDEATHSIG`` = SIGKILL, so a SIGKILLed
    blastune (which can pass nothing on) does not leave it orphaned. The exit status is untouched.
    (The kernel clears it when the child executes a set-user-ID program.)
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from blastune.core.lifetime import die_with, libc_prctl
from blastune.errors import BlastuneError
from blastune.facts.environment import thread_env
from blastune.core.counts import per_job

if TYPE_CHECKING:
    from blastune.control.pinning import CpuSet
    from blastune.control.profile import AutoChoice
    from blastune.control.treewatch import TreeReport


class CommandNotRunnable(BlastuneError):
    """The command could not be started; ``exit_status`` is what ``env``/``nice``/``timeout`` give:
    127 when it is not found, 126 when it is found but cannot be executed."""

    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.exit_status = exit_status


@dataclass
class RunResult:
    command: list[str]
    threads: int
    env: dict[str, str]
    exit_status: int
    report: TreeReport | None = None  # with --report (to_dict: as a dict)

    def to_dict(self):
        return {"schema": "blastune.run/1", **asdict(self)}


@dataclass
class JobThreads:
    """The threads ``env`` exports and ``run`` starts a command with, the reason, and the variables;
    with ``pin``, also the job's CPU set (its variables then place OpenMP on those CPUs)."""

    threads: int
    reason: str
    env: dict[str, str]
    pinned: CpuSet | None = None
    jobs: int = 1
    auto: AutoChoice | None = None  # when the saved profile was asked: its fallback and warning

    def to_dict(self) -> dict:
        """The ``blastune.env/1`` document."""
        doc = {
            "schema": "blastune.env/1",
            "threads": self.threads,
            "reason": self.reason,
            "env": self.env,
        }
        if self.pinned is not None:
            taskset = f"taskset -c {self.pinned.cpulist}"
            doc["pin"] = {**self.pinned.to_dict(), "jobs": self.jobs, "taskset": taskset}
        return doc


def job_threads(
    threads: int | None = None,
    jobs: int | None = None,
    auto: bool = False,
    *,
    pin: bool = False,
    job_index: int | None = None,
    smt: bool = False,
) -> JobThreads:
    """One thread count from -t N, --jobs N or --auto (--auto --jobs N: the recommendation for N
    jobs), with the reason (shown by env/run). Neither -t nor --jobs means --auto. With ``pin``: the
    CPU set of job ``job_index`` (0) of ``jobs`` (1: the whole machine), one thread per CPU."""
    if pin:
        from blastune.control.pinning import job_set, pin_env

        if threads is not None or auto:
            raise BlastuneError(
                "--pin sets each job's threads to its CPU count: give --jobs N (and --job-index "
                f"I), not {'--threads' if threads is not None else '--auto'}"
            )
        jobs = 1 if jobs is None else jobs
        cs = job_set(jobs, 0 if job_index is None else job_index, smt=smt)
        reason = (
            f"job {cs.job} of {jobs} pinned to CPUs {cs.cpulist} ({cs.domain()}): "
            f"{cs.threads} thread(s)"
        )
        return JobThreads(cs.threads, reason, pin_env(cs.cpus), cs, jobs)
    if threads is not None and (jobs is not None or auto):
        raise BlastuneError(
            "give only one of --threads, --jobs and --auto (--auto may take --jobs)"
        )
    choice = None
    if threads is not None:
        n, reason = threads, "asked for"
    elif auto or jobs is None:
        from blastune.control.profile import auto_choice

        choice = auto_choice(jobs)
        n, reason = choice.threads, choice.reason
    else:
        from blastune.facts.cpu import usable_cores

        cores, basis = usable_cores()
        n, reason = per_job(cores, jobs), f"{cores} usable cores ({basis}) // {jobs} jobs"
    return JobThreads(n, reason, thread_env(n), auto=choice)


def _check_command(command) -> None:
    if not command:
        raise BlastuneError("no command given: use blastune run -t N -- CMD ARGS...")
    if not command[0]:
        raise BlastuneError("the command name is empty (''): use blastune run -t N -- CMD ARGS...")


def launch_error(cmd: str, exc: OSError) -> str:
    """One line saying why ``cmd`` could not start, in the words a shell would use."""
    if isinstance(exc, FileNotFoundError) and os.sep not in cmd:
        here = f"; for the file in this directory use ./{cmd}" if os.path.isfile(cmd) else ""
        return f"command not found: {cmd} (not on PATH{here})"
    if isinstance(exc, FileNotFoundError):
        return f"cannot run {cmd}: no such file"
    if os.path.isdir(cmd):
        return f"cannot run {cmd}: it is a directory"
    if isinstance(exc, PermissionError):
        return f"cannot run {cmd}: permission denied (is it executable? chmod +x {cmd})"
    if exc.errno == errno.ENOEXEC:
        return f"cannot run {cmd}: not a program the system can start (a script needs a #! line)"
    return f"cannot run {cmd}: {exc.strerror or exc}"


def launch_failure(cmd: str, exc: OSError) -> CommandNotRunnable:
    """The error for a command that did not start: 127 not found, 126 found but not executable."""
    status = 127 if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOTDIR else 126
    return CommandNotRunnable(launch_error(cmd, exc), status)


def exec_command(command: list[str], threads: int):
    """Become ``command`` with the thread variables set (never returns; raises when it cannot
    start)."""
    _check_command(command)
    env = {**os.environ, **thread_env(threads)}
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        raise launch_failure(command[0], exc) from None


_FORWARDED = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)
_SI_KERNEL = 0x80  # si_code of a signal the kernel raised itself, e.g. the terminal's Ctrl-C
_BURST_S = 0.05  # one signal from one sender again within this long: the same event


def in_terminal_foreground() -> bool:
    """Is this process in the foreground process group of its controlling terminal?"""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def shell_status(code: int) -> int:
    """A Popen return code as a shell reports it: killed by signal N is 128 + N."""
    return 128 - code if code < 0 else code


def _child_setup(own_group: bool, old_mask, parent: int):
    """Runs in the child between fork and exec: its own group (or not), dying with us, our mask
    undone."""
    prctl = libc_prctl()

    def setup():
        if own_group:
            os.setpgid(0, 0)
        die_with(prctl, parent, signal.SIGKILL)
        if old_mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    return setup


def run(
    command: list[str],
    threads: int,
    *,
    report: bool = False,
) -> RunResult:
    """Run ``command`` as a child with the thread variables set; wait, passing signals on once.

    ``report=True`` also measures the process tree (``blastune.control.treewatch``).
    """
    _check_command(command)
    env = thread_env(threads)
    own_group = not in_terminal_foreground()
    linux = hasattr(signal, "sigtimedwait")
    waited = set(_FORWARDED) | {signal.SIGCHLD}
    # block first: a signal arriving between the start and the wait must not be lost (or kill us)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, waited) if linux else None
    try:
        t0 = time.monotonic()
        try:
            child = subprocess.Popen(
                command,
                env={**os.environ, **env},
                preexec_fn=_child_setup(own_group, old_mask, os.getpid()),
            )
        except OSError as exc:
            raise launch_failure(command[0], exc) from None
        if own_group:
            try:  # also from this side: forwarding may start before the child ran its setup
                os.setpgid(child.pid, child.pid)
            except OSError:
                pass
        watch = None
        if report:
            from blastune.control.treewatch import TreeWatch

            watch = TreeWatch(child.pid)
        if linux:
            _wait_forwarding(child, waited, own_group, watch)
        else:
            _wait_with_handlers(child, watch)
        if watch is not None:
            # the child has exited but is not reaped: its descendants are still there
            watch.sample()
        _, status, rusage = os.wait4(child.pid, 0)  # PEP 475: retried after a signal
        wall = time.monotonic() - t0
    finally:
        if linux:
            unblock(waited, old_mask)
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code
    tree = watch.report(rusage, wall) if watch is not None else None
    return RunResult(
        command=list(command),
        threads=threads,
        env=env,
        exit_status=shell_status(code),
        report=tree,
    )


def unblock(signals, old_mask) -> None:
    """Restore ``old_mask``, first dropping what of ``signals`` is pending: nothing left to fire."""
    while signal.sigtimedwait(signals, 0) is not None:
        pass
    signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def _pass_on(pid: int, signo: int) -> None:
    with suppress(ProcessLookupError):  # it has just exited
        os.kill(pid, signo)


def _exited(pid: int) -> bool:
    """Has the child exited? It stays unreaped (WNOWAIT), so its tree can be read one last time."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _wait_forwarding(child, waited, own_group: bool, watch) -> None:
    """Wait for the child, passing on the signals sent to us (Linux: signals taken
    synchronously)."""
    last: dict[int, tuple[int, float]] = {}
    while not _exited(child.pid):
        if watch is not None and watch.due():
            watch.sample()
        # SIGCHLD ends the wait as soon as the child exits
        info = signal.sigtimedwait(waited, watch.interval if watch is not None else 0.5)
        if info is None or info.si_signo == signal.SIGCHLD:
            continue
        if not own_group and info.si_code == _SI_KERNEL:
            continue  # the terminal sent it to the whole foreground group: the child has it
        now = time.monotonic()
        sender, at = last.get(info.si_signo, (None, -1.0))
        if sender == info.si_pid and now - at < _BURST_S:
            continue
        last[info.si_signo] = (info.si_pid, now)
        _pass_on(child.pid, info.si_signo)


def _wait_with_handlers(child, watch) -> None:
    """Where there is no sigtimedwait (macOS): forward every signal from a handler."""

    def forward(signum, _frame):
        _pass_on(child.pid, signum)

    previous = {s: signal.signal(s, forward) for s in _FORWARDED}
    try:
        while not _exited(child.pid):
            if watch is not None:
                watch.sample()
            time.sleep(watch.interval if watch is not None else 0.05)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
