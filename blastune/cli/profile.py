"""``blastune profile show | clear | path``: the saved advice (the logic: control.profile)."""

from __future__ import annotations

import typer

from blastune.cli import app
from blastune.cli.render import echo, emit_json, json_option, notice
from blastune.present.advice import render_profile

profile_app = typer.Typer(
    help="The saved advice env --auto and limit('auto') use: show, clear, path.",
    no_args_is_help=True,
)
app.add_typer(
    profile_app, name="profile", short_help="Show, clear or locate the saved advice (profile)."
)

_JSON = json_option("Print JSON.")


@profile_app.command("show", short_help="List the saved entries and which one env --auto uses.")
def show_command(json_out: bool = _JSON):
    """List this machine's saved advice: per workload and number of jobs, the BLAS threads, the
    layout they came from, when, and whether the data were clean."""
    from blastune.control.profile import show_profile

    report = show_profile()
    if json_out:
        emit_json(report.to_dict())
    else:
        echo(render_profile(report))  # fitted to COLUMNS, as every command's text


@profile_app.command("clear", short_help="Remove the saved profiles (no question asked).")
def clear_command(json_out: bool = _JSON):
    """Remove every profile blastune saved in its cache directory, and nothing else."""
    from blastune.control.profile import clear_profiles, not_profiles
    from blastune.core.files import cache_dir

    removed = clear_profiles()
    left = not_profiles()
    if json_out:
        emit_json(
            {
                "schema": "blastune.profile-clear/1",
                "removed": [str(p) for p in removed],
                "directory": str(cache_dir()),
                "left": [str(p) for p in left],
            }
        )
        return
    # a path ends the line: printed whole, not wrapped
    typer.echo(
        f"removed {len(removed)} saved profile(s) from {cache_dir()}"
        if removed
        else f"no saved profile in {cache_dir()}"
    )
    for p in left:  # named like a profile, yet not a file blastune wrote: never removed
        kind = "a directory" if p.is_dir() else "not a regular file"
        notice(f"left {p} alone: {kind}, not a profile blastune wrote (remove it yourself)")


@profile_app.command(
    "path", short_help="Print where this machine's profile is (or would be) saved."
)
def path_command(json_out: bool = _JSON):
    """Where this machine's profile is saved (named after the machine and BLAS fingerprint)."""
    import os

    from blastune.control.profile import profile_path

    path = profile_path()
    if json_out:
        emit_json(
            {
                "schema": "blastune.profile-path/1",
                "path": str(path),
                "exists": os.path.lexists(path),
            }
        )
    else:
        typer.echo(str(path))
