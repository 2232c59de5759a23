"""``blastune run --copies N``: start N copies of a command at once, each on its own CPU set.

Each copy gets the thread variables for its share (with ``pin``: its CPUs, ``OMP_PLACES`` and the
affinity mask, set in the child before it starts) and ``BLASTUNE_JOB_INDEX``/``BLASTUNE_JOBS``.

Signals: every copy runs in a process group of its own, so a signal meant for the whole job -- the
terminal's Ctrl-C, ``timeout``'s or Slurm's SIGTERM to the group, a SIGHUP -- reaches blastune only,
and blastune passes it to each copy's group exactly once. Copies die with blastune (Linux:
``PR_SET_PDEATHSIG``), and any still running when blastune leaves early are ended. The exit status
is the worst of the copies' (a copy killed by signal N counts as 128 + N, as a shell reports it).
A stop signal (SIGINT, SIGTERM, SIGHUP) that comes while the copies are still being started stops
the starting: the copies already started get it, are ended, and the exit status is 128 + N.

How many: pinned copies are bounded by the CPUs (one set each). Unpinned copies share the cores;
by default at most ``COPIES_PER_CPU`` per usable CPU (more is almost surely a typo: every copy
would wait for a CPU most of the time), and with ``oversubscribe`` up to ``MAX_COPIES`` -- every
copy is a process, and a count in the thousands exhausts the machine's process table.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import suppress
from dataclasses import asdict, dataclass

from blastune.control.pinning import pin_env, plan_layout
from blastune.control.run import launch_error, shell_status, unblock
from blastune.core.counts import check_count
from blastune.core.lifetime import die_with, libc_prctl
from blastune.errors import BlastuneError
from blastune.facts.environment import thread_env
from blastune.facts.topology import format_cpulist

_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

# Four copies per usable CPU: each then waits for a CPU at least 3/4 of the time. Beyond that the
# count is almost surely a mistake, and it is refused unless asked for (``oversubscribe``).
COPIES_PER_CPU = 4
# The hard cap, asked for or not: 8 per CPU of a 256-core, 2-way SMT machine, and an eighth of
# Linux's default pid_max (32768) -- a count in the millions once froze a machine's process table.
MAX_COPIES = 4096


@dataclass
class Copy:
    index: int
    pid: int
    threads: int
    cpus: str | None  # its CPU list when pinned
    exit_status: int | None = None


@dataclass
class CopiesResult:
    command: list[str]
    pinned: bool
    exit_status: int  # the worst copy's
    copies: list[Copy]

    def to_dict(self):
        return {"schema": "blastune.run-copies/1", **asdict(self)}


def run_copies(
    command: list[str],
    copies: int,
    *,
    pin: bool = True,
    smt: bool = False,
    oversubscribe: bool = False,
) -> CopiesResult:
    """Run ``copies`` copies of ``command`` at once and wait for all of them (see the module's
    docstring for how many may be asked for and what a signal does)."""
    if not command:
        raise BlastuneError("no command given: use blastune run --copies N --pin -- CMD ARGS...")
    copies = check_count(copies, "--copies", 1, MAX_COPIES)
    if not hasattr(signal, "sigtimedwait"):
        raise BlastuneError("run --copies needs Linux (signals are forwarded with sigtimedwait)")
    if pin:
        sets = plan_layout(copies, smt=smt)
        plans = [(s.threads, s.cpus) for s in sets]
    else:
        from blastune.facts.cpu import usable_cores

        usable = usable_cores()[0]
        if copies > COPIES_PER_CPU * usable and not oversubscribe:
            raise BlastuneError(
                f"--copies {copies} is more than {COPIES_PER_CPU} per usable CPU ({usable} "
                f"CPUs: at most {COPIES_PER_CPU * usable}); add --oversubscribe to "
                f"start them anyway (at most {MAX_COPIES})"
            )
        plans = [(max(1, usable // copies), None)] * copies
    parent, prctl = os.getpid(), libc_prctl()
    children: list[tuple[subprocess.Popen, Copy]] = []
    waited = set(_FORWARDED) | {signal.SIGCHLD}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    stopped_by = None
    try:
        for i, (threads, cpus) in enumerate(plans):
            # blocked, a stop signal waits in the queue: look between starts, so that starting
            # thousands of copies cannot outlast a timeout's SIGTERM or a Ctrl-C
            stopped_by = signal.sigtimedwait(_FORWARDED, 0)
            if stopped_by is not None:
                _signal_all(children, stopped_by.si_signo)
                break
            env = {
                **os.environ,
                **(pin_env(cpus) if cpus else thread_env(threads)),
                "BLASTUNE_JOB_INDEX": str(i),
                "BLASTUNE_JOBS": str(copies),
            }

            def setup(cpus=cpus):
                # the child starts with blastune's blocked signals: give it the default mask back
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
                die_with(prctl, parent, signal.SIGTERM)
                if cpus:
                    os.sched_setaffinity(0, cpus)

            try:
                child = subprocess.Popen(command, env=env, preexec_fn=setup, process_group=0)
            except OSError as exc:  # in the words `blastune run` uses for one command
                raise BlastuneError(launch_error(command[0], exc)) from None
            children.append(
                (child, Copy(i, child.pid, threads, format_cpulist(cpus) if cpus else None))
            )
        else:
            _wait_all(children, waited)
    finally:
        _end_children(children)
        unblock(waited, old_mask)
    for child, copy in children:
        copy.exit_status = shell_status(child.returncode)
    worst = max((c.exit_status for _, c in children), default=0)
    if stopped_by is not None:  # not every copy ran: the run was stopped, whatever the copies said
        worst = 128 + stopped_by.si_signo
    return CopiesResult(
        command=list(command), copies=[c for _, c in children], pinned=pin, exit_status=worst
    )


def _signal_all(children, signo: int) -> None:
    for child, _ in children:
        if child.poll() is None:
            with suppress(OSError):  # its group has just ended
                os.killpg(child.pid, signo)


def _wait_all(children, waited) -> None:
    while any(child.poll() is None for child, _ in children):
        info = signal.sigtimedwait(waited, 0.5)
        if info is not None and info.si_signo in _FORWARDED:
            _signal_all(children, info.si_signo)


def _end_children(children, grace: float = 5.0) -> None:
    """Whatever path we leave by, no copy outlives us: SIGTERM, a grace period, then SIGKILL."""
    live = [child for child, _ in children if child.poll() is None]
    _signal_all(children, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in live:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with suppress(OSError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
