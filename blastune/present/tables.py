"""Tables and prose that fit the terminal: the one table helper every command renders through.

A table wider than the terminal wraps or mangles on screen and in a pasted bug report. ``fit_table``
renders with tabulate, and when the result is wider than ``width`` it narrows the widest columns
first (short columns -- numbers, units -- keep their width), wrapping long text cells onto more
lines and shortening paths and other unbreakable cells in the middle
(``…/numpy.libs/libscipy_openblas…so``) so that both ends -- the directory that says whose copy
it is, the file's extension -- stay readable. ``wide=True`` shows every cell whole. Machine formats
(tsv, html, latex) are never touched.
"""

from __future__ import annotations

import os
import shutil
import textwrap

ELLIPSIS = "…"
DEFAULT_WIDTH = 100  # what we assume when stdout is not a terminal (a pipe, a log, a CI job)
TABLE_FORMATS = (
    "simple",
    "plain",
    "github",
    "grid",
    "pipe",
    "rst",
    "psql",
    "fancy_grid",
    "rounded_outline",
    "simple_outline",
    "orgtbl",
    "tsv",
    "html",
    "latex",
)
# formats read by programs, not people: their cells must stay whole
_MACHINE_FORMATS = {"tsv", "html", "latex"}
# formats whose cells may span several lines: all the others but markdown's and org's pipe tables
_MULTILINE_FORMATS = set(TABLE_FORMATS) - _MACHINE_FORMATS - {"github", "pipe", "orgtbl"}
_MIN_TOKEN = 12  # an unbreakable cell (a path) is never narrowed below this many characters
_SHORT_HEADER = 8  # a header this short never wraps: the narrowing is taken from wider columns


def columns_env() -> int | None:
    """COLUMNS as a positive whole number, else None: the user's word on the width comes first."""
    env = os.environ.get("COLUMNS", "")
    return int(env) if env.strip().isdigit() and int(env) > 0 else None


def terminal_width() -> int:
    """COLUMNS when set, else the terminal's width, else 100 (not a terminal)."""
    return columns_env() or shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns


def shorten_middle(text: str, width: int) -> str:
    """'libscipy_openblas64_-ff651d7f.so' -> 'libscipy_open….so': keep the start and the
    ending."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    dot = text.rfind(".")
    # a file's extension says what it is: keep it whole when it is short
    tail = len(text) - dot if dot > 0 and len(text) - dot <= 6 else (width - 1) // 3
    tail = min(tail, max(0, width - 2))
    head = width - 1 - tail
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


def shorten_path(text: str, width: int) -> str:
    """A path cut to ``width``: the file name and the directories nearest to it win
    ('/usr/lib/python3/site-packages/numpy.libs/libscipy_openblas64_-ff651d7f.so' ->
    '…/numpy.libs/libscipy_openblas64_….so')."""
    if len(text) <= width:
        return text
    parts = text.rstrip("/").split("/")
    name, dirs = parts[-1], parts[:-1]
    kept = name
    for d in reversed(dirs):  # add whole directories from the right while they fit
        if len(ELLIPSIS + "/" + d + "/" + kept) > width:
            break
        kept = d + "/" + kept
    if kept != name:
        return ELLIPSIS + "/" + kept
    # the name alone is too long: keep its directory if the name keeps 10+ chars
    if dirs and dirs[-1]:
        room = width - len(ELLIPSIS + "/" + dirs[-1] + "/")
        if room >= 10:
            return ELLIPSIS + "/" + dirs[-1] + "/" + shorten_middle(name, room)
    room = width - len(ELLIPSIS + "/")
    return ELLIPSIS + "/" + shorten_middle(name, room) if room >= 4 else shorten_middle(text, width)


def _is_path(text: str) -> bool:
    return "/" in text and " " not in text


def fit_cell(text: str, width: int, multiline: bool = True) -> str:
    """One cell within ``width`` columns: text wraps (when the format allows), paths and other
    unbreakable words shorten in the middle."""
    out = []
    for line in str(text).split("\n"):
        if len(line) <= width:
            out.append(line)
        elif _is_path(line):
            out.append(shorten_path(line, width))
        elif multiline and " " in line.strip():
            wrapped = textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False)
            out += [
                w
                if len(w) <= width
                else (shorten_path(w, width) if _is_path(w) else shorten_middle(w, width))
                for w in wrapped
            ]
        else:
            out.append(shorten_middle(line, width))
    return "\n".join(out) if multiline else " ".join(out)


def _lines_width(text: str) -> int:
    return max((len(line) for line in text.split("\n")), default=0)


def _natural(cells: list[str]) -> int:
    return max((_lines_width(c) for c in cells), default=0)


def _floor(header: str, cells: list[str]) -> int:
    """How narrow a column may get: its longest word (capped), so numbers and units never break,
    and a short header whole ('CPU %' on two lines reads as two columns)."""
    words = [w for c in cells for w in str(c).split()] or [""]
    longest = max(len(w) for w in words)
    header = str(header)
    head = (
        len(header)
        if len(header) <= _SHORT_HEADER
        else max((len(w) for w in header.split()), default=0)
    )
    return max(3, head, min(longest, _MIN_TOKEN))


def fit_table(
    rows,
    headers=(),
    fmt: str = "simple",
    width: int | None = None,
    wide: bool = False,
    clip: tuple[int, ...] = (),
) -> str:
    """``tabulate(rows, headers, fmt)`` made to fit ``width`` columns (the terminal's, or 100).

    Headers that are all empty print no header row. With ``wide``, or for tsv/html/latex, nothing is
    cut. A column of file paths that does not fit whole becomes references ``[1]``, ``[2]`` with the
    paths listed under the table (a path cut to 16 characters no longer says whose copy it is). When
    even the narrowest layout is wider (a very narrow terminal), the narrowest is returned.
    """
    rows = [["" if c is None else str(c) for c in r] for r in rows]
    headers = [str(h) for h in headers]
    if headers and not any(headers):
        headers = []
    text = _render(rows, headers, fmt)
    if wide or fmt in _MACHINE_FORMATS or not rows:
        return text
    width = width or terminal_width()
    if _lines_width(text) <= width:
        return text
    ncols = max(len(r) for r in rows)
    rows = [r + [""] * (ncols - len(r)) for r in rows]
    paths = [
        i
        for i in range(ncols)
        if all(not r[i] or _is_path(r[i]) for r in rows) and any(r[i] for r in rows)
    ]
    fitted = _fit(rows, headers, fmt, width, keep=paths, clip=clip)
    if _lines_width(fitted) <= width or not paths:
        return fitted
    # the paths do not fit whole beside the rest: refer to them and list them below
    refs: dict[str, int] = {}
    for r in rows:
        for i in paths:
            if r[i]:
                r[i] = f"[{refs.setdefault(r[i], len(refs) + 1)}]"
    notes = [
        fit_cell(f"[{k}] {p}", width)
        if len(p) + 4 <= width
        else f"[{k}] " + shorten_path(p, width - 5)
        for p, k in refs.items()
    ]
    return _fit(rows, headers, fmt, width, clip=clip) + "\n" + "\n".join(notes)


def _render(rows, headers, fmt: str, padding: int | None = None) -> str:
    import tabulate as module

    saved = module.MIN_PADDING
    if padding is not None:  # the 2 extra columns tabulate gives every header cost 2 per column
        module.MIN_PADDING = padding
    try:
        return module.tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)
    finally:
        module.MIN_PADDING = saved


def shorten_end(text: str, width: int) -> str:
    """'python -m joblib.externals.loky.backend.popen' -> 'python -m joblib.ext…': the start
    stays."""
    return text if len(text) <= width else text[: max(0, width - 1)] + ELLIPSIS[:width]


def _fit(rows, headers, fmt, width, keep=(), clip=()) -> str:
    """Narrow the columns that have room (never those in ``keep``, never below a floor) until it
    fits, each in proportion to its room: a long command line gives up more than a short list."""
    multiline = fmt in _MULTILINE_FORMATS
    ncols = len(rows[0])
    cols = [[r[i] for r in rows] for i in range(ncols)]
    heads = headers if headers else [""] * ncols
    widths = [max(_natural(c), len(h)) for c, h in zip(cols, heads)]
    floors = [
        w if i in keep else min(w, _floor(h, c))
        for i, (w, c, h) in enumerate(zip(widths, cols, heads))
    ]

    def cut(cell: str, i: int, w: int) -> str:
        if i in clip:  # one line, whatever the cell holds ('python -c' with a script)
            return shorten_end(" ".join(cell.split()), w)
        return fit_cell(cell, w, multiline)

    text = _render(rows, headers, fmt, padding=0)
    for _ in range(8):  # each round narrows by what the last render still overflowed
        over = _lines_width(text) - width
        if over <= 0 or not _narrow(widths, floors, over):
            break
        cut_rows = [[cut(c, i, w) for i, (c, w) in enumerate(zip(r, widths))] for r in rows]
        cut_heads = [fit_cell(h, w, multiline) for h, w in zip(heads, widths)] if headers else []
        text = _render(cut_rows, cut_heads, fmt, padding=0)
    return text


def _narrow(widths: list[int], floors: list[int], over: int) -> bool:
    """Take ``over`` columns off, from each column in proportion to its room above its floor
    (largest remainders first), none below its floor; False if stuck.

    Taking from the widest first made every long column equally narrow: a 60-character command
    ended as narrow as a 17-character list beside it, wrapped onto four lines."""
    room = [max(0, w - f) for w, f in zip(widths, floors)]
    total = sum(room)
    if total == 0:
        return False
    take = min(over, total)
    shares = [take * r / total for r in room]
    cuts = [int(s) for s in shares]
    left = take - sum(cuts)
    for i in sorted(range(len(room)), key=lambda k: shares[k] - cuts[k], reverse=True):
        if left <= 0:
            break
        if cuts[i] < room[i]:
            cuts[i] += 1
            left -= 1
    for i, c in enumerate(cuts):
        widths[i] -= c
    return take > 0


def fit_text(text: str, width: int | None = None) -> str:
    """Prose lines longer than ``width`` wrapped, continuation lines indented under the first word
    after a 'warning: '/'note: ' label; lines that fit (tables already fitted) are left alone."""
    width = width or terminal_width()
    out = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        lead = line[: len(line) - len(line.lstrip())]
        indent = lead + "  "
        out += textwrap.wrap(
            line,
            width,
            initial_indent="",
            subsequent_indent=indent,
            break_long_words=True,
            break_on_hyphens=False,
        ) or [line[:width]]
    return "\n".join(out)
