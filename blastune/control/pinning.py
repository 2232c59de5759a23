"""Pinned layouts: N concurrent jobs, each on its own disjoint set of CPUs, packed by the topology.

``plan_layout(jobs, topology)`` gives every job the same number of CPUs (its thread count), taking
them so that a job stays inside the smallest domain that holds it -- one L3 domain, else one NUMA
node, else one socket -- and whole domains are used before broken ones. Physical cores come first:
only the first hardware thread of each core is used unless ``smt=True``, in which case a core's
siblings go to the same job. What a layout leaves idle (SMT siblings, a remainder that does not
divide by N) is said, never hidden.

Applying a set: ``pin_env`` (thread variables = CPU count, ``OMP_PLACES``, ``OMP_PROC_BIND``),
``control.exports`` (``taskset`` for scripts), ``set_process_affinity`` (every thread of this
process, not only the caller: BLAS pools started before the pin keep the old mask otherwise).
Processes that share a parent claim disjoint sets with ``claim_set`` (``limit(jobs=N, pin=True)``,
``worker_initializer(jobs=N, pin=True)``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from blastune.core.counts import check_threads, whole_number
from blastune.errors import BlastuneError
from blastune.facts.environment import thread_env
from blastune.facts.topology import Topology, cpu_runs, format_cpulist, read_topology


@dataclass
class CpuSet:
    """One job's CPUs; its BLAS thread count is their number."""

    job: int
    cpus: list[int]
    sockets: list[int]
    numa_nodes: list[int]
    l3_domains: list[int]
    whole_l3: bool  # every L3 domain it touches is its alone
    kinds: list[str]  # core types it spans ("P", "E") on hybrid parts

    @property
    def threads(self) -> int:
        return len(self.cpus)

    @property
    def cpulist(self) -> str:
        return format_cpulist(self.cpus)

    def domain(self) -> str:
        """Where it lives, smallest domain first: 'L3 #2 (NUMA 0)', 'L3 #0-#1 (NUMA 0)',
        'NUMA 0-1 ...'."""
        parts = []
        if self.l3_domains:
            l3 = self.l3_domains
            span = (
                f"#{l3[0]}"
                if len(l3) == 1
                else f"#{l3[0]}-#{l3[-1]}"
                if l3 == list(range(l3[0], l3[-1] + 1))
                else ",".join(f"#{i}" for i in l3)
            )
            parts.append(f"L3 {span}" + ("" if self.whole_l3 else " (shared)"))
        if self.numa_nodes:
            parts.append(f"NUMA {format_cpulist(self.numa_nodes)}")
        if len(self.sockets) > 1 or not parts:
            parts.append(f"socket {format_cpulist(self.sockets)}")
        if len(self.kinds) > 1:
            parts.append("P+E cores")
        elif self.kinds:
            parts.append(f"{self.kinds[0]} cores")
        return ", ".join(parts)

    def to_dict(self):
        return {
            "job": self.job,
            "cpus": self.cpulist,
            "cpu_ids": self.cpus,
            "threads": self.threads,
            "sockets": self.sockets,
            "numa_nodes": self.numa_nodes,
            "l3_domains": self.l3_domains,
            "whole_l3": self.whole_l3,
            "kinds": self.kinds,
            "domain": self.domain(),
        }


@dataclass
class Layout:
    jobs: int
    smt: bool
    threads_per_job: int
    sets: list[CpuSet]
    idle: list[int]  # usable CPUs no job gets
    idle_reasons: list[str]  # why, in words
    topology: str  # the summary line of the topology it was planned on
    limited_by: list[str] = field(default_factory=list)

    def to_dict(self):
        return {
            "schema": "blastune.layout/1",
            "jobs": self.jobs,
            "smt": self.smt,
            "threads_per_job": self.threads_per_job,
            "topology": self.topology,
            "limited_by": self.limited_by,
            "sets": [s.to_dict() for s in self.sets],
            "idle": format_cpulist(self.idle),
            "idle_cpus": len(self.idle),
            "idle_reasons": self.idle_reasons,
        }


# --- planning -------------------------------------------------------------------------------------


class _Node:
    """A domain in the fill order (socket > NUMA node > L3 > core type > core); leaves hold free
    CPUs."""

    __slots__ = ("children", "units")

    def __init__(self):
        self.children: dict = {}
        self.units: list[int] = []

    def free(self) -> int:
        return len(self.units) + sum(c.free() for c in self.children.values())

    def take(self, k: int) -> list[int]:
        if not self.children:
            got, self.units = self.units[:k], self.units[k:]
            return got
        out, rest = [], k
        while rest > 0:
            kids = [c for c in self.children.values() if c.free() > 0]
            fits = [c for c in kids if c.free() >= rest]
            # best fit: the fullest domain that still holds it keeps the emptier ones whole
            if fits:
                out += min(fits, key=_Node.free).take(rest)
                break
            biggest = max(kids, key=_Node.free)  # whole domains first, the largest of them
            got = biggest.take(biggest.free())
            out += got
            rest -= len(got)
        return out


def _tree(topology: Topology, smt: bool) -> _Node:
    root = _Node()
    for core in topology.cores:  # already in fill order
        node = root
        for key in (core.socket, core.numa, core.l3, core.kind, (core.socket, core.core_id)):
            node = node.children.setdefault(key, _Node())
        node.units.extend(core.cpus if smt else core.cpus[:1])
    return root


def _describe(job: int, cpus: list[int], topology: Topology) -> CpuSet:
    cores = [topology.core_of(c) for c in cpus]
    l3 = sorted({c.l3 for c in cores if c and c.l3 is not None})
    whole = all(
        set(d.cpus) <= set(cpus) or _only_siblings_left(d.cpus, cpus, topology)
        for d in topology.l3_domains
        if d.index in l3
    )
    return CpuSet(
        job=job,
        cpus=sorted(cpus),
        sockets=sorted({c.socket for c in cores if c}),
        numa_nodes=sorted({c.numa for c in cores if c and c.numa is not None}),
        l3_domains=l3,
        whole_l3=whole and bool(l3),
        kinds=sorted({c.kind for c in cores if c and c.kind}, key=lambda k: (k != "P", k)),
    )


def _only_siblings_left(domain_cpus, cpus, topology) -> bool:
    """An L3 domain counts as the job's own when all it does not use are SMT siblings of its
    cores."""
    mine = {(c.socket, c.core_id) for c in (topology.core_of(x) for x in cpus) if c}
    return all(
        (topology.core_of(x).socket, topology.core_of(x).core_id) in mine
        for x in domain_cpus
        if x not in cpus
    )


def _check_jobs(jobs) -> int:
    return check_threads(jobs, "job count")


def plan_layout(jobs: int, topology: Topology | None = None, smt: bool = False) -> list[CpuSet]:
    """``jobs`` disjoint CPU sets of equal size, packed into L3 domains / NUMA nodes / sockets."""
    return layout(jobs, topology, smt).sets


def layout(jobs: int, topology: Topology | None = None, smt: bool = False) -> Layout:
    """The pinned layout for ``jobs`` concurrent jobs, with what it leaves idle and why."""
    jobs = _check_jobs(jobs)
    topology = topology if topology is not None else read_topology()
    units = sum(len(c.cpus) if smt else 1 for c in topology.cores)
    if jobs > units:
        more = (
            f" (--smt would give {len(topology.cpus)} CPUs)"
            if not smt and len(topology.cpus) >= jobs
            else ""
        )
        what = "CPUs" if smt else "physical cores"
        raise BlastuneError(
            f"{jobs} pinned jobs need at least {jobs} {what}: this process may use "
            f"{units}{more}; run at most {units} jobs"
        )
    per_job = units // jobs
    tree = _tree(topology, smt)
    sets = [_describe(i, tree.take(per_job), topology) for i in range(jobs)]
    used = {c for s in sets for c in s.cpus}
    idle = [c for c in topology.cpus if c not in used]
    reasons = []
    siblings = [c for c in idle if not smt and topology.core_of(c).cpus[0] != c]
    if siblings:
        reasons.append(
            f"{len(siblings)} SMT sibling CPUs ({format_cpulist(siblings)}): physical cores first; "
            "--smt uses them"
        )
    rest = [c for c in idle if c not in siblings]
    if rest:
        what = "CPU" if smt else "core"
        reasons.append(
            f"{len(rest)} {what}{'s' * (len(rest) != 1)} ({format_cpulist(rest)}): {units} {what}s "
            f"do not divide into {jobs} jobs of {per_job}"
        )
    return Layout(
        jobs=jobs,
        smt=smt,
        threads_per_job=per_job,
        sets=sets,
        idle=idle,
        idle_reasons=reasons,
        topology=topology.summary(),
        limited_by=list(topology.limited_by),
    )


def job_set(jobs: int, index: int, topology: Topology | None = None, smt: bool = False) -> CpuSet:
    """Job ``index`` (0-based, as Slurm array and pool indices are) of a ``jobs``-job layout."""
    jobs = _check_jobs(jobs)
    i = whole_number(index)
    if i is None or not 0 <= i < jobs:
        raise BlastuneError(
            f"invalid --job-index {index!r}: must be 0 to {jobs - 1} for {jobs} jobs"
        )
    return plan_layout(jobs, topology, smt)[i]


# --- applying a set -------------------------------------------------------------------------------


def omp_places(cpus) -> str:
    """One OpenMP place per CPU, runs written as intervals: [0,1,2,3,64] -> '{0}:4,{64}'."""
    return ",".join(f"{{{a}}}" + (f":{b - a + 1}" if b > a else "") for a, b in cpu_runs(cpus))


def pin_env(cpus) -> dict[str, str]:
    """Thread variables = the CPU count, and the OpenMP placement onto exactly these CPUs."""
    env = thread_env(len(cpus))
    env["OMP_PLACES"] = omp_places(cpus)
    env["OMP_PROC_BIND"] = "close"
    env["BLASTUNE_CPUS"] = format_cpulist(cpus)
    return env


def can_pin() -> bool:
    return hasattr(os, "sched_setaffinity")


def set_process_affinity(cpus) -> set[int]:
    """Pin every thread of this process to ``cpus``; returns the main thread's previous mask.

    ``sched_setaffinity(0)`` moves only the calling thread, and a BLAS pool created before (OpenBLAS
    starts its threads when numpy is imported) would keep running everywhere.
    """
    if not can_pin():
        raise BlastuneError("pinning needs sched_setaffinity (Linux); this system has none")
    cpus = set(cpus)
    before = os.sched_getaffinity(0)
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:  # a thread that ended meanwhile
            pass
        except OSError as exc:
            raise BlastuneError(
                f"cannot pin to CPUs {format_cpulist(cpus)}: {exc.strerror}"
            ) from None
    return before


# --- claiming a set among sibling processes -------------------------------------------------------

_claims: dict[tuple[str, int], tuple[int, socket.socket | None]] = {}


def _after_fork_in_child() -> None:
    # a forked worker must claim its own set, not keep its parent's
    for _, sock in _claims.values():
        if sock is not None:
            sock.close()
    _claims.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def claim_set(token: str, jobs: int) -> int | None:
    """The lowest free job index among processes using ``token``, held until this process exits.

    A claim is an abstract Unix socket name (Linux): the kernel frees it when its holder dies, so a
    pool's replacement worker takes over the set of the worker it replaces, and nothing is left on
    disk. None when all ``jobs`` sets are taken (or the system has no abstract sockets).
    """
    key = (token, jobs)
    if key in _claims:
        return _claims[key][0]
    for i in range(jobs):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(f"\0blastune-pin/{token}/{jobs}/{i}")
        except OSError:
            sock.close()
            continue
        sock.set_inheritable(False)
        _claims[key] = (i, sock)
        return i
    return None


class Pinning:
    """This process's share of a ``jobs``-job layout, claimed among processes with the same
    token."""

    def __init__(self, jobs: int, token: str | None = None):
        self.jobs = _check_jobs(jobs)
        self.token = token or f"ppid{os.getppid()}"
        self._set: CpuSet | None = None
        self._saved: list[set[int]] = []

    def cpuset(self) -> CpuSet | None:
        """The claimed set (None when every set is taken: this process then runs unpinned)."""
        if self._set is None:
            index = claim_set(self.token, self.jobs)
            if index is None:
                return None
            self._set = plan_layout(self.jobs)[index]
        return self._set

    def threads(self) -> int:
        s = self.cpuset()
        if s is not None:
            return s.threads
        return max(1, len(read_topology().cores) // self.jobs)

    def enter(self) -> CpuSet | None:
        s = self.cpuset()
        if s is None:
            import warnings

            warnings.warn(
                f"all {self.jobs} pinned CPU sets are taken by sibling processes: this one runs "
                "unpinned",
                RuntimeWarning,
                stacklevel=3,
            )
            self._saved.append(None)
            return None
        self._saved.append(set_process_affinity(s.cpus))
        return s

    def exit(self) -> None:
        before = self._saved.pop() if self._saved else None
        if before is not None:
            set_process_affinity(before)
