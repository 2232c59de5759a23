"""``blastune plot``: a figure (PNG, SVG or PDF) from saved sweep or jobs results."""

from __future__ import annotations

from pathlib import Path

import typer

from blastune.cli import app
from blastune.cli.render import emit_json, force_option, json_option, label_option, out_option


@app.command("plot", short_help="Draw saved sweep or jobs results (PNG, SVG, PDF).")
def plot_command(
    files: list[Path] = typer.Argument(
        ...,
        metavar="FILE.json...",
        show_default=False,
        help="Saved results: sweep files (one or several, overlaid) or jobs files.",
    ),
    out: Path = out_option(
        "The figure to write; its extension picks the format.", "FIG.png|svg|pdf", required=True
    ),
    kind: str = typer.Option(
        "auto",
        "--kind",
        "-k",
        metavar="auto|threads|sizes|jobs",
        help="threads: against threads, a line per size; sizes: against size, a line "
        "per thread count, the crossover marked; auto picks from the file.",
    ),
    metric: str = typer.Option(
        "gflops", "--metric", metavar="gflops|speedup", help="What the sweep panels show."
    ),
    labels: list[str] = label_option(
        "Legend name of each file, in order (repeat: --label before --label after). "
        "[default: the file names]"
    ),
    dpi: int = typer.Option(
        None,
        "--dpi",
        show_default=False,
        help="PNG pixels per inch, 50 to 600 [default: 150: a one-panel "
        "figure is 900 px wide]; SVG and PDF are vectors.",
    ),
    force: bool = force_option("Replace an existing figure file."),
    json_out: bool = json_option("Print what was drawn as JSON (blastune.plot/1)."),
):
    """Draw saved results: small multiples per op for sweeps (against threads or sizes, several
    files overlaid for before/after), tasks/s per layout for jobs.

    \b
      blastune plot sweep.json -o sweep.png
      blastune plot before.json after.json --label OpenBLAS --label MKL -o cmp.svg
      blastune plot jobs.json -o jobs.pdf
    """
    from blastune.core.files import check_distinct, check_output
    from blastune.present.plot import (
        check_available,
        check_dpi,
        choose_kind,
        figure_format,
        load_sources,
        make_figure,
        save_figure,
    )

    check_available("blastune plot")
    form, dpi = figure_format(out), check_dpi(dpi)
    check_distinct([("--out", out)], [("input", f) for f in files])  # never draw over a source
    check_output(out, force=force, what="figure")  # before loading anything: a clear refusal first
    sources = load_sources(files, labels)
    drawn = choose_kind(sources, kind)
    fig = make_figure(sources, drawn, metric)
    # checked above: replacing is what was allowed
    save_figure(fig, out, force=True, what="figure", dpi=dpi)
    panels = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    if json_out:
        emit_json(
            {
                "schema": "blastune.plot/1",
                "written_to": str(out),
                "format": form,
                "dpi": dpi if form == "png" else None,
                "kind": drawn,
                "metric": metric if drawn != "jobs" else "tasks_per_s",
                "files": [str(f) for f in files],
                "labels": [s.label for s in sources],
                "panels": panels,
            }
        )
    else:
        typer.echo(f"wrote {out} ({drawn}, {len(panels)} panel{'s' if len(panels) != 1 else ''})")
