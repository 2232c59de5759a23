"""The CPU topology this process may use: sockets, NUMA nodes, L3 domains, cores, SMT siblings, core
types.

Read from sysfs (Linux): ``/sys/devices/system/cpu/cpu*/topology`` and ``cache/index*``,
``/sys/devices/system/node/node*`` and, on hybrid Intel parts,
``/sys/devices/cpu_core|cpu_atom/cpus``. The machine's CPUs are then narrowed to the ones this
process may run on: its affinity mask and its cgroup cpuset (a Slurm job or a container sees a slice
of a big node, and only that slice counts).

``BLASTUNE_SYSFS_ROOT`` points the reader at another root holding ``sys/`` (and optionally
``proc/``)
-- a captured tree, for testing and diagnosis. The live process's affinity belongs to this machine,
not to the captured one, so under another root it is not applied; the tree's own
``proc/self/status`` ``Cpus_allowed_list`` and cgroup cpuset are. ``BLASTUNE_CGROUP_ROOT`` overrides
where the cgroup file system is mounted (default ``<root>/sys/fs/cgroup``).
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from blastune.errors import BlastuneError
from blastune.facts.cpu import cgroup_ancestors, cgroup_lines, cgroup_root, read_text

SYSFS_ROOT_VAR = "BLASTUNE_SYSFS_ROOT"

# Linux names Intel's hybrid core types by the PMU that counts them.
CORE_KIND_DIRS = (("P", "sys/devices/cpu_core/cpus"), ("E", "sys/devices/cpu_atom/cpus"))


def parse_cpulist(text: str) -> list[int]:
    """'0-3,8,10-11' -> [0, 1, 2, 3, 8, 10, 11] (the kernel's list format; blank -> [])."""
    out: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if m is None:
            raise ValueError(f"not a CPU list: {text.strip()!r}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        out.update(range(lo, hi + 1))
    return sorted(out)


def cpu_runs(cpus) -> list[tuple[int, int]]:
    """[0, 1, 2, 3, 8] -> [(0, 3), (8, 8)]: runs of consecutive CPUs, first and last."""
    cpus = sorted(set(cpus))
    runs, i = [], 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        runs.append((cpus[i], cpus[j]))
        i = j + 1
    return runs


def format_cpulist(cpus) -> str:
    """[0, 1, 2, 3, 8] -> '0-3,8' (what taskset -c and Slurm take)."""
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in cpu_runs(cpus))


@dataclass
class Domain:
    """A socket, NUMA node or L3 domain, as far as this process may use it."""

    level: str  # "socket", "numa" or "l3"
    index: int  # package id, node id, or the L3 domain's ordinal (by its lowest CPU)
    cpus: list[int]  # the usable CPUs in it
    machine_cpus: int  # how many CPUs it has on the whole machine
    memory_bytes: int | None = None  # NUMA nodes: MemTotal

    @property
    def whole(self) -> bool:
        return len(self.cpus) == self.machine_cpus

    def to_dict(self):
        return {**asdict(self), "cpulist": format_cpulist(self.cpus), "whole": self.whole}


@dataclass
class Core:
    """One physical core: its usable SMT siblings, lowest first (a layout without SMT uses the
    first)."""

    socket: int
    core_id: int
    cpus: list[int]
    machine_cpus: int  # its hardware threads on the whole machine
    numa: int | None = None
    l3: int | None = None  # Domain.index of its L3 domain
    kind: str | None = None  # "P" or "E" on hybrid parts

    def to_dict(self):
        return asdict(self)


@dataclass
class Topology:
    source: str  # "/" or the BLASTUNE_SYSFS_ROOT it was read from
    machine_cpus: list[int]  # online CPUs of the machine
    cpus: list[int]  # the usable ones: online and in the affinity mask and the cgroup cpuset
    limited_by: list[str]  # what narrowed machine_cpus to cpus, e.g. "cgroup cpuset (...)"
    sockets: list[Domain]
    numa_nodes: list[Domain]
    l3_domains: list[Domain]
    cores: list[Core]
    notes: list[str] = field(default_factory=list)

    @property
    def physical_cores(self) -> int:
        return len(self.cores)

    @property
    def smt(self) -> int:
        """Most usable hardware threads on one core (1 = no SMT in use)."""
        return max((len(c.cpus) for c in self.cores), default=1)

    @property
    def kinds(self) -> dict[str, list[int]]:
        """Usable CPUs by core type ({} unless the machine is hybrid)."""
        out: dict[str, list[int]] = {}
        for c in self.cores:
            if c.kind:
                out.setdefault(c.kind, []).extend(c.cpus)
        return {k: sorted(v) for k, v in out.items()}

    @property
    def hybrid(self) -> bool:
        return len(self.kinds) > 1

    def core_of(self, cpu: int) -> Core | None:
        return next((c for c in self.cores if cpu in c.cpus), None)

    def summary(self) -> str:
        """One line, e.g.
        '2 sockets × 1 NUMA node × 8 L3 domains × 4 cores × 2 SMT = 128 CPUs'."""
        return _summary(self)

    def to_dict(self):
        return {
            "source": self.source,
            "summary": self.summary(),
            "machine_cpus": format_cpulist(self.machine_cpus),
            "cpus": format_cpulist(self.cpus),
            "usable_cpus": len(self.cpus),
            "physical_cores": self.physical_cores,
            "smt": self.smt,
            "limited_by": self.limited_by,
            "kinds": {k: format_cpulist(v) for k, v in self.kinds.items()},
            "sockets": [d.to_dict() for d in self.sockets],
            "numa_nodes": [d.to_dict() for d in self.numa_nodes],
            "l3_domains": [d.to_dict() for d in self.l3_domains],
            "cores": [c.to_dict() for c in self.cores],
            "notes": self.notes,
        }


# --- summary --------------------------------------------------------------------------------------


def plural(n: int, word: str) -> str:
    """'1 core', '2 cores', '3 processes'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}{'es' if word.endswith('s') else 's'}"


def _factor(parents: list[set[int]], children: list[set[int]]) -> int | None:
    """Children per parent when every child lies in one parent and every parent holds as many."""
    counts = [0] * len(parents)
    for child in children:
        homes = [i for i, p in enumerate(parents) if child <= p]
        if len(homes) != 1:
            return None
        counts[homes[0]] += 1
    return counts[0] if counts and len(set(counts)) == 1 else None


def _core_text(t: Topology, n_cores: int, smt_uniform: bool) -> str:
    if smt_uniform:
        return plural(n_cores, "core") + (f" × {t.smt} SMT" if t.smt > 1 else "")
    if t.hybrid:  # e.g. "14 cores (6 P × 2 SMT + 8 E)"
        parts = []
        for kind in sorted(t.kinds, key=lambda k: (k != "P", k)):  # performance cores first
            cores = [c for c in t.cores if c.kind == kind]
            smt = max(len(c.cpus) for c in cores)
            parts.append(f"{len(cores)} {kind}" + (f" × {smt} SMT" if smt > 1 else ""))
        return f"{plural(n_cores, 'core')} ({' + '.join(parts)})"
    sizes = sorted({len(c.cpus) for c in t.cores})
    return f"{plural(n_cores, 'core')} × {'-'.join(map(str, (sizes[0], sizes[-1])))} SMT"


def _summary(t: Topology) -> str:
    levels = [("socket", t.sockets), ("NUMA node", t.numa_nodes), ("L3 domain", t.l3_domains)]
    levels = [(name, doms) for name, doms in levels if doms]
    cores = [set(c.cpus) for c in t.cores]
    smt_uniform = len({len(c) for c in cores}) <= 1
    suffix = (
        f" (of {len(t.machine_cpus)} on the machine)" if len(t.cpus) < len(t.machine_cpus) else ""
    )
    # The product form reads as arithmetic, so it is used only when it is exact: each level nests
    # in the one above with the same count under every parent.
    terms, ok = [], True
    parents = None
    nested = [(name, [set(d.cpus) for d in doms]) for name, doms in levels] + [("core", cores)]
    for name, doms in nested:
        n = len(doms) if parents is None else _factor(parents, doms)
        if n is None:
            ok = False
            break
        terms.append((name, n))
        parents = doms
    if ok:
        words = [plural(n, name) for name, n in terms[:-1]]
        words.append(_core_text(t, terms[-1][1], smt_uniform))
        return " × ".join(words) + f" = {plural(len(t.cpus), 'CPU')}{suffix}"
    words = []
    for name, doms in levels:
        partly = sum(1 for d in doms if not d.whole)
        part = "" if not partly else " (partly)" if len(doms) == 1 else f" ({partly} partly)"
        words.append(plural(len(doms), name) + part)
    words.append(_core_text(t, len(cores), smt_uniform))
    return (
        f"{len(t.cpus)} of {len(t.machine_cpus)} CPUs: " + ", ".join(words)
        if suffix
        else ", ".join(words) + f" = {plural(len(t.cpus), 'CPU')}"
    )


# --- reading sysfs --------------------------------------------------------------------------------


def _read_int(path: Path) -> int | None:
    try:
        return int(read_text(path, "").strip())
    except ValueError:
        return None


def _read_list(path: Path) -> list[int] | None:
    text = read_text(path)
    try:
        return parse_cpulist(text) if text is not None else None
    except ValueError:
        return None


def sysfs_root() -> Path:
    """Where sysfs is read from: $BLASTUNE_SYSFS_ROOT (a captured tree) or /."""
    root = os.environ.get(SYSFS_ROOT_VAR) or "/"
    path = Path(root)
    if not (path / "sys/devices/system/cpu").is_dir():
        if root != "/":
            raise BlastuneError(
                f"{SYSFS_ROOT_VAR}={root!r} holds no sys/devices/system/cpu directory: "
                "point it at the root of a captured sysfs tree"
            )
    return path


def _online(root: Path) -> list[int]:
    base = root / "sys/devices/system/cpu"
    online = _read_list(base / "online")
    present = sorted(int(p.name[3:]) for p in base.glob("cpu[0-9]*") if p.name[3:].isdigit())
    if online is None:
        return present
    # a CPU without a directory cannot be described; one listed offline cannot run anything
    return [c for c in online if c in present] or online


def _cgroup_cpuset(root: Path) -> tuple[list[int] | None, str | None]:
    """The effective cpuset of this process's cgroup (v2 cpuset.cpus.effective, v1
    cpuset.effective_cpus)."""
    cg_root = cgroup_root(root)
    for controllers, rel in cgroup_lines(read_text(root / "proc/self/cgroup", "")):
        if controllers == "":
            base, names = cg_root, ("cpuset.cpus.effective",)
        elif "cpuset" in controllers.split(","):
            base, names = cg_root / "cpuset", ("cpuset.effective_cpus", "cpuset.cpus")
        else:
            continue
        # the file lives where the controller is enabled: walk up from our cgroup to the root
        for d in cgroup_ancestors(base, rel):
            for name in names:
                cpus = _read_list(d / name)
                if cpus:
                    return cpus, str(d / name)
    return None, None


def _affinity(root: Path, explicit) -> tuple[list[int] | None, str | None]:
    if explicit is not None:
        cpus = sorted(set(explicit))
        return cpus, f"affinity mask {format_cpulist(cpus)} (given)"
    if str(root) == "/":
        if hasattr(os, "sched_getaffinity"):
            cpus = sorted(os.sched_getaffinity(0))
            return cpus, f"affinity mask {format_cpulist(cpus)}"
        return None, None
    status = read_text(root / "proc/self/status", "")
    m = re.search(r"^Cpus_allowed_list:\s*(\S+)", status, re.M)
    if m:
        try:
            cpus = parse_cpulist(m.group(1))
            return cpus, f"affinity mask {format_cpulist(cpus)} (proc/self/status)"
        except ValueError:
            pass
    return None, None


def _cache_dirs(cache: Path):
    """index3 first (the L3 on x86 and most ARM kernels); the others are listed only if it is
    not."""
    yield cache / "index3"
    yield from (p for p in sorted(cache.glob("index*")) if p.name != "index3")


def _domains(level: str, groups, usable: set[int]) -> list[Domain]:
    """A ``Domain`` for each (index, its CPUs on the machine[, memory]) that holds a usable CPU."""
    return [
        Domain(level, i, sorted(set(cpus) & usable), len(cpus), *memory)
        for i, cpus, *memory in groups
        if set(cpus) & usable
    ]


def _memory(node_dir: Path) -> int | None:
    m = re.search(r"MemTotal:\s+(\d+) kB", read_text(node_dir / "meminfo", ""))
    return int(m.group(1)) * 1024 if m else None


def read_topology(root: str | Path | None = None, affinity=None) -> Topology:
    """The topology under ``root`` (default: $BLASTUNE_SYSFS_ROOT or /), narrowed to ``affinity``
    (default: this process's mask when reading the live /, the tree's own proc/self/status
    otherwise) and the cgroup cpuset. On a system without sysfs the result holds the CPUs Python
    sees, one core each."""
    root = Path(root) if root is not None else sysfs_root()
    base = root / "sys/devices/system/cpu"
    machine = _online(root)
    notes = []
    if not machine:
        n = os.cpu_count() or 1
        machine = list(range(n))
        notes.append("no sysfs CPU topology: each CPU counted as its own core")
    usable, limited_by = set(machine), []
    # the cpuset first: it is the wider, administrative limit; the affinity is named only when it
    # narrows things further (inside a cpuset the kernel keeps the mask within it anyway)
    cpuset, cpuset_src = _cgroup_cpuset(root)
    if cpuset is not None and not usable <= set(cpuset):
        usable &= set(cpuset)
        limited_by.append(f"cgroup cpuset {format_cpulist(cpuset)} ({Path(cpuset_src).name})")
    aff, aff_src = _affinity(root, affinity)
    if aff is not None and not usable <= set(aff):
        usable &= set(aff)
        limited_by.append(aff_src)
    if not usable:
        raise BlastuneError(
            f"no usable CPU: the affinity mask / cpuset leave none of {format_cpulist(machine)}"
        )

    # per CPU: package, core id, siblings, L3
    pkg, core_id, siblings, l3_of = {}, {}, {}, {}
    l3_lists: dict[tuple, list[int]] = {}
    for cpu in machine:
        topo = base / f"cpu{cpu}" / "topology"
        pkg[cpu] = _read_int(topo / "physical_package_id")
        if pkg[cpu] is None or pkg[cpu] < 0:
            pkg[cpu] = 0
        cid = _read_int(topo / "core_id")
        core_id[cpu] = cid if cid is not None else cpu
        sib = (
            _read_list(topo / "core_cpus_list")
            or _read_list(topo / "thread_siblings_list")
            or [cpu]
        )
        siblings[cpu] = tuple(c for c in sib if c in machine) or (cpu,)
        cache = base / f"cpu{cpu}" / "cache"
        # index3 is the L3 on every x86 and most ARM kernels: look there first, scan only if not
        for index in _cache_dirs(cache):
            if read_text(index / "level", "").strip() == "3" and (
                read_text(index / "type") or "Unified"
            ).strip() in ("Unified", "Data"):
                shared = _read_list(index / "shared_cpu_list")
                if shared:
                    key = tuple(c for c in shared if c in machine)
                    l3_lists[key] = list(key)
                    l3_of[cpu] = key
                break

    node_dirs = (root / "sys/devices/system/node").glob("node[0-9]*")
    nodes = [
        (int(d.name[4:]), [c for c in _read_list(d / "cpulist") or [] if c in machine], _memory(d))
        for d in sorted(node_dirs, key=lambda p: int(p.name[4:]))
    ]
    node_of = {c: i for i, cpus, _ in nodes for c in cpus}
    numa = _domains("numa", nodes, usable)
    # L3 domains, numbered by their lowest CPU
    l3_index = {key: i for i, key in enumerate(sorted(l3_lists, key=min))}
    l3 = _domains("l3", [(i, key) for key, i in l3_index.items()], usable)
    packages = [(p, [c for c in machine if pkg[c] == p]) for p in sorted(set(pkg.values()))]
    sockets = _domains("socket", packages, usable)

    kind_of = {}
    for kind, rel in CORE_KIND_DIRS:
        for c in _read_list(root / rel) or []:
            kind_of[c] = kind

    cores, seen = [], set()
    for cpu in machine:
        sib = siblings[cpu]
        if sib in seen:
            continue
        seen.add(sib)
        mine = [c for c in sorted(sib) if c in usable]
        if not mine:
            continue
        first = mine[0]
        cores.append(
            Core(
                socket=pkg[first],
                core_id=core_id[first],
                cpus=mine,
                machine_cpus=len(sib),
                numa=node_of.get(first),
                l3=l3_index.get(l3_of.get(first)),
                kind=kind_of.get(first),
            )
        )
    # the order a layout fills them in: socket, NUMA node, L3 domain, core type, then the CPU number
    cores.sort(
        key=lambda c: (
            c.socket,
            c.numa if c.numa is not None else -1,
            c.l3 if c.l3 is not None else -1,
            0 if c.kind in (None, "P") else 1,
            c.cpus[0],
        )
    )
    return Topology(
        source=str(root),
        machine_cpus=machine,
        cpus=sorted(usable),
        limited_by=limited_by,
        sockets=sockets,
        numa_nodes=numa,
        l3_domains=l3,
        cores=cores,
        notes=notes,
    )


def topology_or_none() -> Topology | None:
    """``read_topology()``, or None where it cannot be read (for info and doctor, which never fail
    on it)."""
    try:
        return read_topology()
    except (BlastuneError, OSError):
        return None
