"""Whole numbers from users and environment variables: one validator for every count."""

from __future__ import annotations

import operator
import re

from blastune.errors import BlastuneError

# ASCII only: str.isdigit() also takes '٣' or '³', which no C library reads
_UINT = re.compile(r"[0-9]+")


def positive_ints(value: str | None) -> list[int] | None:
    """'4' -> [4]; '4,2' -> [4, 2] (OpenMP's nesting list); blanks around items are fine.

    None when unset or when any item is not a positive decimal integer.
    """
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",")]
    if not all(_UINT.fullmatch(p) and int(p) > 0 for p in parts):
        return None
    return [int(p) for p in parts]


def first_positive_int(environ, names) -> tuple[int | None, str | None]:
    """The first of ``names`` set to a positive integer (or a list starting with one), and its
    name."""
    for name in names:
        vals = positive_ints((environ or {}).get(name))
        if vals:
            return vals[0], name
    return None, None


# The largest count a C int holds: every BLAS/OpenMP thread API takes one, and a bigger Python int
# would be silently truncated on the way in (2**32 arrives as 0).
MAX_THREADS = 2**31 - 1


def whole_number(value) -> int | None:
    """``value`` as an int when it is a whole number -- an int or a numpy integer, not a bool --
    else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_threads(threads, what: str = "thread count") -> int:
    """A thread count: 1 to ``MAX_THREADS``, in ``check_count``'s words (one message everywhere)."""
    return check_count(threads, what)


def check_count(value, what: str, lo: int = 1, hi: int = MAX_THREADS) -> int:
    """The one validator for every count a user gives (threads, jobs, repeats, tasks, sizes…).

    Accepts an int or a numpy integer, refuses bools, floats and strings; ``lo <= value <= hi``.
    """
    n = whole_number(value)
    if n is None or not lo <= n <= hi:
        raise BlastuneError(f"invalid {what} {value!r}: must be a whole number from {lo} to {hi}")
    return n


def parse_count(text: str, what: str, lo: int = 1, hi: int = MAX_THREADS) -> int:
    """A count typed on a command line: ASCII digits only ('٣' and '³' are digits to str.isdigit,
    never to a C library or a user's intent), within ``lo..hi``; one clear error otherwise."""
    s = text.strip() if isinstance(text, str) else text
    if not isinstance(s, str) or not _UINT.fullmatch(s):
        raise BlastuneError(f"invalid {what} {text!r}: must be a whole number from {lo} to {hi}")
    return check_count(int(s), what, lo, hi)


_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def per_job(cores: int, jobs: int) -> int:
    """The BLAS threads each of ``jobs`` concurrent jobs gets on ``cores`` usable cores: the seed's
    rule (jobs x threads <= cores), never below one thread -- more jobs than cores still run."""
    return max(1, cores // max(1, jobs))


def format_bytes(nbytes: float) -> str:
    """A memory size for a message, in the unit that keeps it between 1 and 1024 with three
    significant digits: '512 B', '1.5 MiB', '160 EiB' (never '0 MiB' or '171798691680.0 GiB')."""
    value, unit = float(nbytes), 0
    while abs(value) >= 1024 and unit < len(_BYTE_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    text = f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return f"{text} {_BYTE_UNITS[unit]}"
