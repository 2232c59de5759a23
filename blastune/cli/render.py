"""Shared rendering: JSON, tables that fit the terminal, and the options and validators several
commands share (one declaration each, the help passed in where it differs).

Every command's tables go through ``table`` and its text through ``echo``: both fit COLUMNS (100
when stdout is not a terminal) unless the command's ``--wide`` (``WIDE``: its callback is
``set_wide``) asks for everything whole.
"""

from __future__ import annotations

import json
import sys

import typer

from blastune.core.counts import MAX_THREADS, parse_count
from blastune.errors import BlastuneError
from blastune.present.tables import TABLE_FORMATS, columns_env, fit_table, fit_text, terminal_width

_wide = False  # one command per process; reset by the app before each command


def set_wide(on: bool) -> bool:
    """Returns ``on``: as ``--wide``'s callback, what it returns is the option's value."""
    global _wide
    _wide = bool(on)
    return _wide


# --- options several commands share ---------------------------------------------------------------

WIDE = typer.Option(
    False,
    "--wide",
    "-w",
    callback=set_wide,  # set while parsing: notices printed while the command works fit too
    help="Do not fit tables and text to the terminal: every cell whole.",
)
FORMAT = typer.Option(
    "simple", "--format", "-f", help="tabulate table style: simple, github, grid, ..."
)


def json_option(help: str):
    return typer.Option(False, "--json", help=help)


def quiet_option(help: str):
    return typer.Option(False, "--quiet", "-q", help=help)


def force_option(help: str):
    return typer.Option(False, "--force", help=help)


def out_option(help: str, metavar: str | None = None, required: bool = False):
    return typer.Option(
        ... if required else None,
        "--out",
        "-o",
        metavar=metavar,
        show_default=not required,
        help=help,
    )


def label_option(help: str):
    return typer.Option(None, "--label", "-L", metavar="NAME", help=help)


def emit_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def check_format(fmt: str) -> str:
    if fmt not in TABLE_FORMATS:
        raise BlastuneError(
            f"unknown table format {fmt!r}: choose one of {', '.join(TABLE_FORMATS)}"
        )
    return fmt


def table(rows, headers, fmt: str = "simple") -> str:
    """A tabulate table fitted to the terminal (see blastune.present.tables.fit_table)."""
    check_format(fmt)
    return fit_table(rows, headers, fmt, wide=_wide)


def echo(text: str, err: bool = False) -> None:
    """typer.echo with prose lines wrapped to the terminal (tables are fitted already)."""
    typer.echo(text if _wide else fit_text(text), err=err)


def notice(message: str, label: str = "notice") -> None:
    """'blastune: notice: ...' (or warning) on stderr, wrapped to the terminal with a hanging
    indent.

    Every command's notices and warnings go through here: a 311-character line in a terminal wraps
    mid-word and, pasted into a bug report, runs off the page. ``--wide`` leaves it one line."""
    text = f"blastune: {label}: {message}" if label else f"blastune: {message}"
    typer.echo(text if _wide else fit_text(text, stderr_width()), err=True)


def stderr_width() -> int:
    """COLUMNS, else stderr's terminal (stdout may be a pipe: `blastune jobs > out.txt`), else
    100."""
    import os

    try:
        return columns_env() or os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return terminal_width()


def words(values: str | list[str]) -> list[str]:
    """The comma/space-separated words of an option's text, or of every value of a repeatable
    option; empty words dropped."""
    values = [values] if isinstance(values, str) else values
    return [word for v in values for word in str(v).replace(" ", "").split(",") if word]


def count_parser(option: str, hi: int = MAX_THREADS):
    """A typer parser: the option's text through ``core.counts.parse_count``, the one validator
    (and the one message) every count on every command goes through."""

    def check(value):
        return None if value is None else parse_count(value, option, hi=hi)

    return check
