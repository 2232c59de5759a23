"""``blastune compare``: two sweep (or two jobs) results files, point by point, judged from the
raw samples (the logic: blastune.advise.compare and blastune.advise.significance; the rows:
blastune.present.compare_rows)."""

from __future__ import annotations

from pathlib import Path

import typer

from blastune.cli import app
from blastune.cli.render import FORMAT, WIDE, check_format, echo, emit_json, json_option
from blastune.present.compare_rows import render_compare


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
    json_out: bool = json_option("Print the comparison as JSON (blastune.compare/2)."),
    fmt: str = FORMAT,
    wide: bool = WIDE,
):
    """Compare two results files point by point: b's median over a's, and whether the samples say b
    is faster, slower, or not significantly different (each point's contended/unstable flags
    shown)."""
    from blastune.advise.compare import compare

    if not json_out:
        check_format(fmt)  # before reading the files
    cmp = compare(a, b, match)
    if json_out:
        emit_json(cmp.to_dict())
    else:
        echo(render_compare(cmp, fmt, wide))
