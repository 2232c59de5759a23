"""What a process tree did while it ran: CPU time, run-queue wait, the BLAS threads it used.

The kernel keeps run-queue wait per thread (``/proc/PID/task/TID/schedstat``, see
``blastune.facts.schedstat``) and forgets it when the thread ends; ``rusage`` adds up the CPU time
of a process and of the children it waited for, but has no wait. So ``TreeWatch``:

  * samples the tree (the child and all its descendants, found through
    ``/proc/PID/task/TID/children``) every ``interval`` seconds and keeps, per thread, the last
    counters seen -- they only grow, so the last seen is the largest;
  * takes a last sample when the child has exited but is not reaped yet (``waitid(WNOWAIT)``): the
    descendants still alive are read at the very end;
  * takes the CPU time from the child's ``rusage`` (exact: the kernel sums every process of the
    tree that was waited for).

A thread that ends between two samples loses what it did since the previous one; ``coverage_pct``
says how much of the tree's CPU time the sampled threads account for (100 = nothing missed), so a
wait share is never shown without the share of the work it was measured on.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field

from blastune.facts.census import mapped_libraries, read_proc
from blastune.facts.schedstat import CpuTimes, available, thread_times

# Sampling period: a BLAS pool lives as long as its process; short-lived helper processes (a shell
# running the real command) are caught if they live longer than this.
INTERVAL_S = 0.1


@dataclass
class TreeProcess:
    pid: int
    command: str
    blas: list[str]  # BLAS/OpenMP families mapped into it
    max_threads: int  # the most OS threads seen at once

    def to_dict(self):
        return asdict(self)


@dataclass
class TreeReport:
    """``time(1)`` for oversubscription: what the whole tree did while it ran."""

    wall_s: float
    user_s: float
    sys_s: float
    cpu_s: float  # user + sys, from rusage (exact)
    run_s: float | None  # on a CPU, from schedstat (sampled threads)
    wait_s: float | None  # runnable but waiting for a CPU (sampled threads)
    wait_share_pct: float | None  # wait / (run + wait): the share of its runnable time it waited
    waiting_threads: float | None  # wait / wall: how many threads stood waiting on average
    coverage_pct: float | None  # sampled run time / rusage CPU time
    samples: int
    interval_s: float
    source: str  # "schedstat", or why there is no wait figure
    processes: list[TreeProcess] = field(default_factory=list)
    blas_threads_max: int | None = None  # the most threads seen in one process that maps a BLAS

    def to_dict(self):
        return asdict(self)

    def lines(self) -> list[str]:
        """The report as ``run --report`` prints it (on stderr, after the command's own output)."""
        out = [
            f"wall {self.wall_s:.2f} s   cpu {self.cpu_s:.2f} s (user {self.user_s:.2f} s, "
            f"sys {self.sys_s:.2f} s)   {len(self.processes)} process(es)"
        ]
        if self.wait_s is None:
            out.append(f"waited for a CPU: not measured ({self.source})")
        else:
            out.append(
                f"waited for a CPU {self.wait_s:.2f} s: {self.wait_share_pct:.0f}% of the time its "
                f"threads could run ({self.waiting_threads:.2f} waiting on average)"
            )
            if self.coverage_pct is not None and self.coverage_pct < 90:
                out.append(
                    f"  measured on threads doing {self.coverage_pct:.0f}% of the CPU time (the "
                    f"rest ended between {self.interval_s:g} s samples)"
                )
        blas = [p for p in self.processes if p.blas]
        if blas:
            seen = ", ".join(
                f"{p.pid} {', '.join(p.blas)}: {p.max_threads} thread(s)" for p in blas[:2]
            )
            more = f" and {len(blas) - 2} more" if len(blas) > 2 else ""
            out.append(f"BLAS processes: {seen}{more}")
        else:
            out.append("BLAS processes: none seen")
        return out


def _children(pid: int) -> list[int]:
    kids = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tids:
        text = read_proc(f"/proc/{pid}/task/{tid}/children")
        if text:
            kids += [int(k) for k in text.split()]
    return kids


class TreeWatch:
    """Sample the process tree under ``root``; ``report(rusage, wall)`` once the root has exited."""

    def __init__(self, root: int, interval: float = INTERVAL_S):
        self.root = root
        self.interval = interval
        self.enabled = available()
        self.last: dict[tuple[int, int], CpuTimes] = {}
        self.procs: dict[int, TreeProcess] = {}
        self.samples = 0
        self.next_at = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def sample(self) -> None:
        self.next_at = time.monotonic() + self.interval
        self.samples += 1
        todo, seen = [self.root], set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            threads = thread_times(pid) if self.enabled else {}
            for tid, t in threads.items():
                self.last[(pid, tid)] = t
            proc = self.procs.get(pid)
            if proc is None:
                cmd = (read_proc(f"/proc/{pid}/cmdline") or "").replace("\0", " ").strip()
                if not cmd:
                    continue  # gone already, or a zombie
                proc = self.procs[pid] = TreeProcess(pid, cmd[:80], [], 0)
            count = len(threads) if threads else _thread_count(pid)
            proc.max_threads = max(proc.max_threads, count)
            if not proc.blas:  # until one shows up: a program may load its BLAS late
                # the vendors `blastune ps` names for the files mapped into it
                proc.blas = list(dict.fromkeys(v for v, _ in mapped_libraries(pid) or ()))
            todo += _children(pid)

    def report(self, rusage, wall_s: float) -> TreeReport:
        user, sys_ = rusage.ru_utime, rusage.ru_stime
        cpu = user + sys_
        processes = sorted(self.procs.values(), key=lambda p: p.pid)
        blas_max = max((p.max_threads for p in processes if p.blas), default=None)
        run = wait = share = waiting = coverage = None
        source = "no per-thread schedstat in this kernel"
        if self.enabled:
            run = sum(t.run_ns for t in self.last.values()) / 1e9
            wait = sum(t.wait_ns for t in self.last.values()) / 1e9
            share = 100.0 * wait / (run + wait) if run + wait > 0 else 0.0
            waiting = wait / max(wall_s, 1e-9)
            coverage = min(100.0, 100.0 * run / cpu) if cpu > 0.01 else None
            source = "schedstat"
        return TreeReport(
            wall_s,
            user,
            sys_,
            cpu,
            run,
            wait,
            share,
            waiting,
            coverage,
            self.samples,
            self.interval,
            source,
            processes,
            blas_max,
        )


def _thread_count(pid: int) -> int:
    text = read_proc(f"/proc/{pid}/status") or ""
    for line in text.splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0
