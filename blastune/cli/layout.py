"""``blastune layout``: the machine's topology, and which CPUs each of N pinned jobs gets."""

from __future__ import annotations

import typer

from blastune.cli import app
from blastune.cli.render import WIDE, check_format, echo, emit_json, set_wide
from blastune.present.layout import render_layout, render_topology


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
    if not json_out:  # the tables are fitted in present/, which trusts the format it is given
        check_format(fmt)
    topo = read_topology()
    if jobs is None:
        if smt:
            from blastune.errors import BlastuneError

            raise BlastuneError("--smt plans jobs: give --jobs N with it")
        if json_out:
            emit_json({"schema": "blastune.topology/1", **topo.to_dict()})
        else:
            echo(render_topology(topo, fmt, wide))
        return
    lay = layout(jobs, topo, smt=smt)
    if json_out:
        emit_json(lay.to_dict())
    else:
        echo(render_layout(lay, fmt, wide))
