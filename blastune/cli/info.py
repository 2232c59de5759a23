"""``blastune info``."""

from __future__ import annotations

import os

import typer

from blastune.cli import app
from blastune.facts.topology import format_cpulist
from blastune.cli.render import WIDE, echo, emit_json, set_wide, table
from blastune.facts.environment import shown_vars

from blastune.present.rows import CONTROL_TEXT  # noqa: F401 -- shared with the report
from blastune.present.rows import control_text as _control, threads_text as _threads


def _notes(data) -> list[str]:
    """Every library note once (the JSON carries them per library; the tables have no room)."""
    seen, out = set(), []
    for lib in [b.library for b in data.bindings if b.library] + list(data.loaded):
        for note in lib.notes:
            if (lib.filepath, note) not in seen:
                seen.add((lib.filepath, note))
                out.append(f"note: {lib.vendor} ({os.path.basename(lib.filepath)}): {note}")
    return out


def render_info(data, fmt: str = "simple") -> str:
    pkgs = ", ".join(
        f"{name} {p['version']}" if p["version"] else f"{name}: {p['error']}"
        for name, p in data.packages.items()
    )
    out = [f"{pkgs}; Python {data.python}; blastune {data.blastune_version}", ""]
    rows = []
    for b in data.bindings:
        lib = b.library
        if lib is None:
            rows.append([b.package, b.api, "-", "-", "-", "-", "-", "-", b.error or "not found"])
            continue
        rows.append(
            [
                b.package,
                b.api,
                lib.vendor,
                lib.version or "?",
                lib.threading_layer or "?",
                lib.architecture or "-",
                _threads(lib),
                _control(lib),
                lib.filepath,
            ]
        )
    out.append("What numpy and scipy call")
    out.append(
        table(
            rows,
            [
                "package",
                "api",
                "vendor",
                "version",
                "threading",
                "kernel",
                "threads",
                "threads set",
                "file",
            ],
            fmt,
        )
    )
    rows = [
        [
            lib.vendor,
            lib.api,
            lib.version or "?",
            lib.threading_layer or "?",
            lib.architecture or "-",
            _threads(lib),
            _control(lib),
            {True: "yes", False: "no"}.get(lib.threadpoolctl_sees, "?"),
            lib.filepath,
        ]
        for lib in data.loaded
    ]
    out.append("\nBLAS and OpenMP libraries loaded in this process")
    out.append(
        table(
            rows,
            [
                "vendor",
                "api",
                "version",
                "threading",
                "kernel",
                "threads",
                "threads set",
                "threadpoolctl",
                "file",
            ],
            fmt,
        )
        if rows
        else "(none found)"
    )
    notes = _notes(data)
    if notes:
        out.append("\n" + "\n".join(notes))
    c = data.cpu
    quota = (
        "none"
        if c.cgroup.quota_cores is None
        else f"{c.cgroup.quota_cores:g} cores ({c.cgroup.source})"
    )
    cpu_rows = [
        ["model", c.model],
        ["logical cores", c.logical_cores],
        ["physical cores", c.physical_cores],
        *(
            [
                [
                    "topology",
                    data.topology.summary()
                    + (
                        ""
                        if data.topology.source == "/"
                        else f" (read from {data.topology.source})"
                    ),
                ]
            ]
            if getattr(data, "topology", None)
            else []
        ),
        ["affinity", format_cpulist(c.affinity) + f" ({len(c.affinity)} CPUs)"],
        ["cgroup CPU quota", quota],
        ["usable cores", f"{c.usable_cores} (limited by {c.usable_basis})"],
        ["SIMD", c.simd],
        ["clock", f"{c.clock_mhz:.0f} MHz ({c.clock_source})" if c.clock_mhz else "unknown"],
        [
            "peak FP64",
            f"{c.peak_gflops_per_core} GFLOP/s per core, {c.peak_gflops_total} total (nominal"
            + (f"; clock: {src})" if (src := getattr(c, "peak_clock_source", None)) else ")")
            if c.peak_gflops_per_core
            else "unknown",
        ],
        ["peak basis", c.peak_basis],
        *([["measured", data.clock.message]] if getattr(data, "clock", None) else []),
    ]
    out.append("\nCPU")
    # a key-value list, not a table: no header row (plain), unless another style was asked for
    out.append(table(cpu_rows, [], "plain" if fmt == "simple" else fmt))
    # the main variables always (unset is news too); the rarer ones only when set
    shown = shown_vars()
    env_rows = [
        [k, "unset" if v is None else v] for k, v in data.env.items() if v is not None or k in shown
    ]
    out.append("\nEnvironment")
    out.append(table(env_rows, ["variable", "value"], fmt))
    for w in data.warnings:
        out.append(f"\nwarning: {w}")
    return "\n".join(out)


@app.command("info", short_help="Which BLAS/LAPACK numpy and scipy call, and their threads.")
def info_command(
    json_out: bool = typer.Option(
        False, "--json", help="Print one versioned JSON object (schema blastune.info/1)."
    ),
    fmt: str = typer.Option(
        "simple", "--format", "-f", help="tabulate table style: simple, github, grid, ..."
    ),
    wide: bool = WIDE,
    measure: bool = typer.Option(
        False,
        "--measure",
        help="Also time a one-thread dgemm (~0.3 s) to tell "
        "whether the CPU runs above the clock of its nominal peak.",
    ),
):
    """Which BLAS/LAPACK numpy and scipy really call, their threads, the CPU and the environment.

    The peak shown is nominal (FLOPs per cycle x the stated clock); --measure checks it with a dgemm.
    """
    from blastune.facts.info import info

    data = info(measure=measure)
    if json_out:
        emit_json(data.to_dict())
    else:
        set_wide(wide)
        echo(render_info(data, fmt))
