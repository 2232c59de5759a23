"""``blastune report``: one self-contained HTML page to attach to a bug report or send to an
admin."""

from __future__ import annotations

from pathlib import Path

import typer

from blastune.cli import app
from blastune.cli.render import emit_json, force_option, json_option, label_option, out_option


@app.command("report", short_help="One self-contained HTML page: info, doctor, figures, tables.")
def report_command(
    files: list[Path] = typer.Argument(
        None,
        metavar="[FILE.json]...",
        show_default=False,
        help="Saved sweep or jobs results to include (also: --from).",
    ),
    out: Path = out_option("The HTML file to write.", "REPORT.html", required=True),
    sources: list[Path] = typer.Option(
        None,
        "--from",
        metavar="FILE.json",
        help="Saved results to include: --from a.json b.json (files after "
        "the first are taken as arguments).",
    ),
    labels: list[str] = label_option(
        "Name of each results file, in order. [default: the file names]"
    ),
    jobs: int = typer.Option(
        1, "--jobs", "-j", min=1, help="Concurrent jobs doctor judges the environment for."
    ),
    doctor_on: bool = typer.Option(
        True,
        "--doctor/--no-doctor",
        help="Include doctor's findings (runs a short probe in a child process).",
    ),
    force: bool = force_option("Replace an existing report file."),
    json_out: bool = json_option("Print what the report holds as JSON (blastune.report/1)."),
):
    """One self-contained HTML page (inline SVG and CSS, no script, nothing fetched): this machine's
    info and doctor findings, and a figure and table for each results file given.

    \b
      blastune report -o report.html --from sweep.json jobs.json
    """
    from blastune.core.files import check_distinct, check_output, write_output
    from blastune.errors import BlastuneError
    from blastune.facts.info import info
    from blastune.present.plot import check_available, load_sources
    from blastune.present.report import build_report

    if Path(str(out)).suffix.lower() not in (".html", ".htm"):
        raise BlastuneError(f"invalid --out {out}: the report is HTML, name it .html")
    paths = list(sources or []) + list(files or [])
    if paths:
        check_available("blastune report with results files")
    check_distinct([("--out", out)], [("input", p) for p in paths])  # never write over a source
    check_output(out, force=force, what="report")
    loaded = load_sources(paths, labels)
    facts = info()
    findings = None
    if doctor_on:
        from blastune.advise.doctor.report import doctor

        findings = doctor(jobs=jobs)
    report = build_report(
        facts,
        findings,
        loaded,
        command=" ".join(["blastune report -o", str(out), *map(str, paths)]),
    )
    write_output(out, report.html, what="report")
    summary = report.summary()
    if json_out:
        emit_json(
            {
                "schema": "blastune.report/1",
                "written_to": str(out),
                "files": [str(p) for p in paths],
                **summary,
            }
        )
    else:
        figs = sum(s["figures"] for s in summary["sections"])
        typer.echo(
            f"wrote {out} ({len(summary['sections'])} sections, {figs} figure(s), "
            f"{summary['bytes'] / 1024:.0f} KiB, self-contained)"
        )
