"""``blastune info``."""

from __future__ import annotations

import typer

from blastune.cli import app
from blastune.cli.render import FORMAT, WIDE, check_format, echo, emit_json, json_option


@app.command("info", short_help="Which BLAS/LAPACK numpy and scipy call, and their threads.")
def info_command(
    json_out: bool = json_option("Print one versioned JSON object (schema blastune.info/1)."),
    fmt: str = FORMAT,
    wide: bool = WIDE,
    measure: bool = typer.Option(
        False,
        "--measure",
        help="Also time a one-thread dgemm (~0.3 s) to tell "
        "whether the CPU runs above the clock of its nominal peak.",
    ),
):
    """Which BLAS/LAPACK numpy and scipy really call, their threads, the CPU and the environment.

    The peak shown is nominal (FLOPs per cycle x the stated clock); --measure checks it with a
    dgemm.
    """
    from blastune.facts.info import info
    from blastune.present.info import render_info

    if not json_out:
        check_format(fmt)
    data = info(measure=measure)
    if json_out:
        emit_json(data.to_dict())
    else:
        echo(render_info(data, fmt, wide))
