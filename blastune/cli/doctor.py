"""``blastune doctor``."""

from __future__ import annotations

import typer

from blastune.cli import app
from blastune.cli.render import (
    FORMAT,
    WIDE,
    check_format,
    echo,
    emit_json,
    json_option,
    quiet_option,
)


@app.command("doctor", short_help="Find BLAS oversubscription and misconfiguration here.")
def doctor_command(
    jobs: int = typer.Option(
        1, "--jobs", "-j", min=1, help="How many jobs will run at once with this environment."
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Exit 1 on warnings too (errors always exit 2)."
    ),
    json_out: bool = json_option("Print one JSON object (schema blastune.doctor/1)."),
    quiet: bool = quiet_option("Show only findings that are not ok."),
    fmt: str = FORMAT,
    wide: bool = WIDE,
):
    """Find BLAS oversubscription and misconfiguration here, each with its fix.

    Exit status: 0 clean, 2 errors, 1 warnings with --strict.
    """
    from blastune.advise.doctor.report import doctor
    from blastune.present.doctor import render_doctor

    if not json_out:
        check_format(fmt)
    report = doctor(jobs=jobs)
    if json_out:
        emit_json(report.to_dict())
    else:
        echo(render_doctor(report, fmt, show_ok=not quiet, wide=wide))
    raise typer.Exit(report.exit_status(strict))
