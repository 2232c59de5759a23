"""``blastune layout``: the machine's topology, and which CPUs each of N pinned jobs gets."""

from __future__ import annotations

import typer

from blastune.cli import app
from blastune.cli.render import WIDE, echo, emit_json, set_wide, table


def render_topology(topo, fmt: str = "simple") -> str:
    from blastune.facts.topology import format_cpulist

    rows = []
    for d in topo.sockets:
        rows.append(
            [
                "socket",
                d.index,
                format_cpulist(d.cpus),
                len(d.cpus),
                "" if d.whole else f"of {d.machine_cpus}",
            ]
        )
    for d in topo.numa_nodes:
        mem = f"{d.memory_bytes / 2**30:.0f} GiB" if d.memory_bytes else ""
        part = "" if d.whole else f"of {d.machine_cpus}"
        rows.append(
            [
                "NUMA node",
                d.index,
                format_cpulist(d.cpus),
                len(d.cpus),
                "; ".join(x for x in (part, mem) if x),
            ]
        )
    for d in topo.l3_domains:
        rows.append(
            [
                "L3 domain",
                d.index,
                format_cpulist(d.cpus),
                len(d.cpus),
                "" if d.whole else f"of {d.machine_cpus}",
            ]
        )
    for kind, cpus in topo.kinds.items():
        rows.append([f"{kind}-cores", "", format_cpulist(cpus), len(cpus), ""])
    out = [
        _header(topo.summary(), topo.limited_by),
        table(rows, ["level", "#", "CPUs", "count", "note"], fmt),
    ]
    return "\n".join(out)


def _header(summary: str, limited_by: list[str]) -> str:
    text = f"topology: {summary}"
    if limited_by:
        text += "\nlimited by: " + "; ".join(limited_by)
    return text + "\n"


def render_layout(lay, fmt: str = "simple") -> str:
    rows = [[s.job, s.cpulist, s.threads, s.domain()] for s in lay.sets]
    how = "SMT siblings included" if lay.smt else "physical cores only"
    out = [
        _header(lay.topology, lay.limited_by),
        f"{lay.jobs} job(s) x {lay.threads_per_job} thread(s), each pinned to its own CPUs ({how})",
        table(rows, ["job", "CPUs", "threads", "domain"], fmt),
    ]
    if lay.idle:
        out.append(f"\nleft idle: {len(lay.idle)} CPU(s)")
        out += [f"  {r}" for r in lay.idle_reasons]
    else:
        out.append("\nleft idle: none")
    return "\n".join(out)


@app.command("layout", short_help="The CPU topology, and the CPUs each of N pinned jobs gets.")
def layout_command(
    jobs: int = typer.Option(
        None,
        "--jobs",
        "-j",
        metavar="N",
        help="Plan N concurrent pinned jobs (without it: show the topology).",
    ),
    smt: bool = typer.Option(
        False, "--smt", help="Give jobs the SMT siblings too (default: physical cores only)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the layout (or topology) as JSON."),
    fmt: str = typer.Option(
        "simple", "--format", "-f", help="tabulate table style: simple, github, grid, ..."
    ),
    wide: bool = WIDE,
):
    """The CPU topology this process may use, and with --jobs N the disjoint CPU set of each job.

    Jobs fill whole L3 domains and NUMA nodes first, and physical cores before SMT siblings; each
    job's thread count is its number of CPUs. Use the same N with `blastune env/run --pin`.
    BLASTUNE_SYSFS_ROOT reads a captured sysfs tree instead of this machine's.
    """
    from blastune.control.pinning import layout
    from blastune.facts.topology import read_topology

    set_wide(wide)
    topo = read_topology()
    if jobs is None:
        if smt:
            from blastune.errors import BlastuneError

            raise BlastuneError("--smt plans jobs: give --jobs N with it")
        if json_out:
            emit_json({"schema": "blastune.topology/1", **topo.to_dict()})
        else:
            echo(render_topology(topo, fmt))
        return
    lay = layout(jobs, topo, smt=smt)
    if json_out:
        emit_json(lay.to_dict())
    else:
        echo(render_layout(lay, fmt))
