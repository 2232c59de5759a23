"""``blastune compare``: two sweep (or two jobs) results files, point by point, judged from the raw
samples (the logic: blastune.advise.compare and blastune.advise.significance)."""

from __future__ import annotations

from pathlib import Path

import typer

from blastune.cli import app
from blastune.cli.render import WIDE, echo, emit_json, set_wide, table
from blastune.present.sweep_rows import fmt_time


def _point_cells(r, cmp, several_libs: bool) -> list:
    if cmp.kind == "jobs":
        return [r.layout]
    threads = r.threads if r.b_threads in (None, r.threads) else f"{r.threads} vs {r.b_threads}"
    return [r.op, *([r.lib] if several_libs else []), r.size, r.dtype, threads]


def _flags(r) -> str:
    return "; ".join(
        f"{side}: {', '.join(flags)}"
        for side, flags in (("a", r.a_flags), ("b", r.b_flags))
        if flags
    )


def render_compare(cmp, fmt: str = "simple") -> str:
    several_libs = len({r.lib for r in cmp.rows}) > 1  # numpy and scipy rows would look the same
    head = (
        ["layout"]
        if cmp.kind == "jobs"
        else ["op", *(["lib"] if several_libs else []), "n", "dtype", "threads"]
    )
    reasons: list[str] = []
    rows = []
    for r in cmp.rows:
        verdict = r.verdict
        if r.reason and r.verdict not in ("faster", "slower"):
            if r.reason not in reasons:
                reasons.append(r.reason)
            verdict += f" [{reasons.index(r.reason) + 1}]"
        p = (
            "-"
            if r.p_adjusted is None and r.p_value is None
            else f"{r.p_adjusted if r.p_adjusted is not None else r.p_value:.2g}"
        )
        rows.append(
            [
                *_point_cells(r, cmp, several_libs),
                fmt_time(r.a_median_s),
                fmt_time(r.b_median_s),
                "-" if r.ratio is None else f"{r.ratio:.3f}",
                p,
                verdict,
                _flags(r),
            ]
        )
    headers = [*head, "a median", "b median", "b / a", "p", "b is", "flags"]
    unit = "per task" if cmp.kind == "jobs" else "per call"
    lines = [f"a = {cmp.a}", f"b = {cmp.b}", table(rows, headers, fmt)]
    lines += [f"[{i}] {text}" for i, text in enumerate(reasons, 1)]
    lines.append(
        f"medians {unit}; b / a below 1: b is faster. p: Mann-Whitney U on the samples, after Holm's"
    )
    lines.append(
        f"correction over the judged points; faster/slower needs p < {cmp.alpha:g} and b / a beyond "
        f"±{cmp.equivalence:.0%}."
    )
    lines.append(
        "A point contended (or busy) on either side is not trusted: re-run it on a quiet machine."
    )
    lines += [f"note: {n}" for n in cmp.notes]
    return "\n".join(lines)


@app.command("compare", short_help="Compare two results files point by point, with significance.")
def compare_command(
    a: Path = typer.Argument(
        ..., metavar="A.json", help="The baseline results (a sweep or jobs JSON file)."
    ),
    b: Path = typer.Argument(
        ..., metavar="B.json", help="The results to compare with it (same kind)."
    ),
    match: str = typer.Option(
        None,
        "--match",
        "-m",
        metavar="FIELDS",
        help="Sweep point fields that must agree (default op,lib,size,dtype,threads); "
        "op,lib,size,dtype compares a --threads 1 sweep with a --threads 2 one.",
    ),
    json_out: bool = typer.Option(
        False, "--json", help="Print the comparison as JSON (blastune.compare/2)."
    ),
    fmt: str = typer.Option(
        "simple",
        "--format",
        "-f",
        metavar="STYLE",
        help="tabulate table style: simple, github, grid, ...",
    ),
    wide: bool = WIDE,
):
    """Compare two results files point by point: b's median over a's, and whether the samples say b is
    faster, slower, or not significantly different (each point's contended/unstable flags shown)."""
    from blastune.advise.compare import compare

    cmp = compare(a, b, match)
    if json_out:
        emit_json(cmp.to_dict())
    else:
        set_wide(wide)
        echo(render_compare(cmp, fmt))
