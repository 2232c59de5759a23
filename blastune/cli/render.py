"""Shared rendering: JSON, tabulate tables, and option validators used by several commands."""
from __future__ import annotations

import json
import sys

from blastune.errors import BlastuneError

TABLE_FORMATS = ("simple", "plain", "github", "grid", "pipe", "rst", "psql", "fancy_grid",
                 "rounded_outline", "simple_outline", "orgtbl", "tsv", "html", "latex")


def emit_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def table(rows, headers, fmt: str = "simple") -> str:
    from tabulate import tabulate

    if fmt not in TABLE_FORMATS:
        raise BlastuneError(f"unknown table format {fmt!r}: choose one of {', '.join(TABLE_FORMATS)}")
    return tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)


def parse_int_list(text: str, what: str, minimum: int = 1) -> list[int]:
    """'1,2,4' -> [1, 2, 4]; anything else is a one-line error naming what is allowed."""
    out = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise BlastuneError(f"invalid {what} {part!r}: must be a whole number >= {minimum}") from None
        if value < minimum:
            raise BlastuneError(f"invalid {what} {value}: must be >= {minimum}")
        out.append(value)
    if not out:
        raise BlastuneError(f"no {what} given")
    return out
