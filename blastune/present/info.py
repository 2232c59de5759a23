"""``blastune info`` for people: its rows, built once for the terminal and the HTML report."""

from __future__ import annotations

import os

from blastune.facts.environment import shown_vars
from blastune.facts.topology import format_cpulist
from blastune.present.rows import control_text, threads_text
from blastune.present.tables import fit_table

_LIBRARY_HEADERS = ["version", "threading", "kernel", "threads", "threads set"]  # _library_cells
BINDING_HEADERS = ["package", "api", "vendor", *_LIBRARY_HEADERS, "file"]
LIBRARY_HEADERS = ["vendor", "api", *_LIBRARY_HEADERS, "threadpoolctl", "file"]


def packages_line(info) -> str:
    """'numpy 2.1.0, scipy 1.14.1; Python 3.11.7; blastune 0.3.0'."""
    pkgs = ", ".join(
        f"{name} {p['version']}" if p["version"] else f"{name}: {p['error']}"
        for name, p in info.packages.items()
    )
    return f"{pkgs}; Python {info.python}; blastune {info.blastune_version}"


def _library_cells(lib) -> list:
    return [
        lib.version or "?",
        lib.threading_layer or "?",
        lib.architecture or "-",
        threads_text(lib),
        control_text(lib),
    ]


def binding_rows(info) -> list[list]:
    """What numpy and scipy call: one row per (package, api)."""
    rows = []
    for b in info.bindings:
        lib = b.library
        if lib is None:
            rows.append([b.package, b.api, "-", "-", "-", "-", "-", "-", b.error or "not found"])
        else:
            rows.append([b.package, b.api, lib.vendor, *_library_cells(lib), lib.filepath])
    return rows


def library_rows(info) -> list[list]:
    """Every BLAS and OpenMP library loaded in this process."""
    sees = {True: "yes", False: "no"}
    return [
        [
            lib.vendor,
            lib.api,
            *_library_cells(lib),
            sees.get(lib.threadpoolctl_sees, "?"),
            lib.filepath,
        ]
        for lib in info.loaded
    ]


def notes(info) -> list[str]:
    """Every library note once (the JSON carries them per library; the tables have no room)."""
    seen, out = set(), []
    for lib in [b.library for b in info.bindings if b.library] + list(info.loaded):
        for note in lib.notes:
            if (lib.filepath, note) not in seen:
                seen.add((lib.filepath, note))
                out.append(f"note: {lib.vendor} ({os.path.basename(lib.filepath)}): {note}")
    return out


def cpu_rows(info) -> list[list]:
    """The CPU as (name, value) rows."""
    c, topo = info.cpu, info.topology
    quota = c.cgroup.quota_cores
    peak = "unknown"
    if c.peak_gflops_per_core:
        clock = f"; clock: {c.peak_clock_source}" if c.peak_clock_source else ""
        peak = (
            f"{c.peak_gflops_per_core} GFLOP/s per core, {c.peak_gflops_total} total "
            f"(nominal{clock})"
        )
    rows = [
        ["model", c.model],
        ["logical cores", c.logical_cores],
        ["physical cores", c.physical_cores],
    ]
    if topo:
        where = "" if topo.source == "/" else f" (read from {topo.source})"
        rows.append(["topology", topo.summary() + where])
    rows += [
        ["affinity", format_cpulist(c.affinity) + f" ({len(c.affinity)} CPUs)"],
        ["cgroup CPU quota", "none" if quota is None else f"{quota:g} cores ({c.cgroup.source})"],
        ["usable cores", f"{c.usable_cores} (limited by {c.usable_basis})"],
        ["SIMD", c.simd],
        ["clock", f"{c.clock_mhz:.0f} MHz ({c.clock_source})" if c.clock_mhz else "unknown"],
        ["peak FP64", peak],
        ["peak basis", c.peak_basis],
    ]
    if info.clock:
        rows.append(["measured", info.clock.message])
    return rows


def env_rows(info) -> list[list]:
    """The main variables always (unset is news too); the rarer ones only when set."""
    shown = shown_vars()
    return [
        [k, "unset" if v is None else v] for k, v in info.env.items() if v is not None or k in shown
    ]


def info_tables(info) -> list[tuple[str, list[str], list[list], list[str]]]:
    """(title, headers, rows, notes under it) of each table, in the order `blastune info` and the
    report show them."""
    loaded = "BLAS and OpenMP libraries loaded in this process"
    return [
        ("What numpy and scipy call", BINDING_HEADERS, binding_rows(info), []),
        (loaded, LIBRARY_HEADERS, library_rows(info), notes(info)),
        ("CPU", [], cpu_rows(info), []),
        ("Environment", ["variable", "value"], env_rows(info), []),
    ]


def render_info(info, fmt: str = "simple", wide: bool = False) -> str:
    """``blastune info`` in the terminal: tables fitted to it unless ``wide``."""
    out = [packages_line(info)]
    for title, headers, rows, said in info_tables(info):
        # a key-value list (no headers), not a table: no header row (plain), unless another style
        # was asked for
        style = "plain" if not headers and fmt == "simple" else fmt
        out += [
            "\n" + title,
            fit_table(rows, headers, style, wide=wide) if rows else "(none found)",
        ]
        if said:
            out.append("\n" + "\n".join(said))
    out += [f"\nwarning: {w}" for w in info.warnings]
    return "\n".join(out)
