"""``blastune doctor``."""

from __future__ import annotations

import typer

from blastune.cli import app
from blastune.cli.render import WIDE, echo, emit_json, set_wide, table

_MARK = {"ok": "ok", "info": "info", "warning": "WARNING", "error": "ERROR"}


def _wrap(text: str, width: int, indent: str = "") -> str:
    import textwrap

    return textwrap.fill(
        text, width, subsequent_indent=indent, break_on_hyphens=False, break_long_words=False
    )


def render_doctor(
    report, fmt: str = "simple", show_ok: bool = True, width: int | None = None
) -> str:
    import shutil

    # the finding column gets what the terminal leaves after the mark and the check id
    width = max(40, (width or shutil.get_terminal_size((140, 24)).columns) - 33)
    rows = []
    for f in report.findings:
        if f.severity == "ok" and not show_ok:
            continue
        text = _wrap(f.finding, width) + (
            f"\n{_wrap('  fix: ' + f.fix, width, '       ')}" if f.fix else ""
        )
        rows.append([_MARK[f.severity], f.id, text])
    out = [
        table(rows, ["severity", "check", "finding / fix"], fmt) if rows else "no problems found"
    ]
    out.append(
        "\n"
        + report.tally()
        + f"  (usable cores: {report.usable_cores}, limited by {report.usable_basis}; jobs: {report.jobs})"
    )
    out += [f"note: {n}" for n in report.notes]
    return "\n".join(out)


@app.command("doctor", short_help="Find BLAS oversubscription and misconfiguration here.")
def doctor_command(
    jobs: int = typer.Option(
        1, "--jobs", "-j", min=1, help="How many jobs will run at once with this environment."
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Exit 1 on warnings too (errors always exit 2)."
    ),
    json_out: bool = typer.Option(
        False, "--json", help="Print one JSON object (schema blastune.doctor/1)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Show only findings that are not ok."),
    fmt: str = typer.Option(
        "simple", "--format", "-f", help="tabulate table style: simple, github, grid, ..."
    ),
    wide: bool = WIDE,
):
    """Find BLAS oversubscription and misconfiguration here, each with its fix.

    Exit status: 0 clean, 2 errors, 1 warnings with --strict.
    """
    from blastune.advise.doctor.report import doctor

    report = doctor(jobs=jobs)
    if json_out:
        emit_json(report.to_dict())
    else:
        set_wide(wide)
        echo(render_doctor(report, fmt, show_ok=not quiet))
    raise typer.Exit(report.exit_status(strict))
