"""``blastune layout``'s text: the machine's topology, and the CPUs each of N pinned jobs gets."""

from __future__ import annotations

from blastune.facts.topology import format_cpulist
from blastune.present.tables import fit_table


def render_topology(topo, fmt: str = "simple", wide: bool = False) -> str:
    """``blastune layout``: the sockets, NUMA nodes, L3 domains and core kinds this process may
    use."""
    rows = []
    levels = (
        ("socket", topo.sockets),
        ("NUMA node", topo.numa_nodes),
        ("L3 domain", topo.l3_domains),
    )
    for level, domains in levels:
        for d in domains:
            part = "" if d.whole else f"of {d.machine_cpus}"
            mem = f"{d.memory_bytes / 2**30:.0f} GiB" if d.memory_bytes else ""  # NUMA nodes
            note = "; ".join(x for x in (part, mem) if x)
            rows.append([level, d.index, format_cpulist(d.cpus), len(d.cpus), note])
    for kind, cpus in topo.kinds.items():
        rows.append([f"{kind}-cores", "", format_cpulist(cpus), len(cpus), ""])
    out = [
        _header(topo.summary(), topo.limited_by),
        fit_table(rows, ["level", "#", "CPUs", "count", "note"], fmt, wide=wide),
    ]
    return "\n".join(out)


def _header(summary: str, limited_by: list[str]) -> str:
    text = f"topology: {summary}"
    if limited_by:
        text += "\nlimited by: " + "; ".join(limited_by)
    return text + "\n"


def render_layout(lay, fmt: str = "simple", wide: bool = False) -> str:
    """``blastune layout --jobs N``: each job's CPUs, and the CPUs left idle and why."""
    rows = [[s.job, s.cpulist, s.threads, s.domain()] for s in lay.sets]
    how = "SMT siblings included" if lay.smt else "physical cores only"
    out = [
        _header(lay.topology, lay.limited_by),
        f"{lay.jobs} job(s) x {lay.threads_per_job} thread(s), each pinned to its own CPUs ({how})",
        fit_table(rows, ["job", "CPUs", "threads", "domain"], fmt, wide=wide),
    ]
    if lay.idle:
        out.append(f"\nleft idle: {len(lay.idle)} CPU(s)")
        out += [f"  {r}" for r in lay.idle_reasons]
    else:
        out.append("\nleft idle: none")
    return "\n".join(out)
