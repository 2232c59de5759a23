"""Typed access to saved documents: every field read through one path, one error line naming it.

A model's ``from_dict`` reads its fields through ``Fields``; anything malformed -- a missing key, a
string where a number belongs, NaN, a bool where a count belongs -- raises ``DocumentError`` with the
file and the field path (``results.json: points[3].median_s: expected a number >= 0, got 'x'``).
Nothing else in blastune walks raw dicts of a saved document.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from blastune.core.counts import whole_number
from blastune.errors import BlastuneError

_MISSING = object()


class DocumentError(BlastuneError):
    """A saved document is malformed; the message names the file and the field."""


class Fields:
    """A dict from a document, with the path that leads to it (for error messages)."""

    def __init__(self, data: Any, where: str, source: str = ""):
        self.source = source
        self.where = where
        if not isinstance(data, dict):
            self.fail(f"expected an object, got {type(data).__name__}")
        self.data = data

    def _at(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, message: str, name: str | None = None):
        where = self._at(name) if name else self.where
        prefix = f"{self.source}: " if self.source else ""
        raise DocumentError(f"{prefix}malformed document: {where or 'top level'}: {message}")

    def has(self, name: str) -> bool:
        return name in self.data and self.data[name] is not None

    def raw(self, name: str, default=_MISSING):
        if name not in self.data:
            if default is _MISSING:
                self.fail("missing", name)
            return default
        return self.data[name]

    def str(self, name: str, default=_MISSING, *, choices=None) -> str | None:
        v = self.raw(name, default)
        if v is None and default is None:
            return None
        if not isinstance(v, str):
            self.fail(f"expected a string, got {v!r}", name)
        if choices is not None and v not in choices:
            self.fail(f"expected one of {', '.join(map(str, choices))}, got {v!r}", name)
        return v

    def bool(self, name: str, default=_MISSING) -> bool | None:
        v = self.raw(name, default)
        if v is None and default is None:
            return None
        if not isinstance(v, bool):
            self.fail(f"expected true or false, got {v!r}", name)
        return v

    def number(self, name: str, default=_MISSING, *, lo: float | None = None,
               hi: float | None = None) -> float | None:
        v = self.raw(name, default)
        if v is None and default is None:
            return None
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        if not ok or (lo is not None and v < lo) or (hi is not None and v > hi):
            bound = "" if lo is None else f" >= {lo:g}"
            bound += "" if hi is None else f" <= {hi:g}"
            self.fail(f"expected a number{bound}, got {v!r}", name)
        return float(v)

    def count(self, name: str, default=_MISSING, *, lo: int = 0, hi: int = 2**63 - 1) -> int | None:
        v = self.raw(name, default)
        if v is None and default is None:
            return None
        n = whole_number(v)
        if n is None or not lo <= n <= hi:
            self.fail(f"expected a whole number from {lo} to {hi}, got {v!r}", name)
        return n

    def list(self, name: str, default=_MISSING) -> list:
        v = self.raw(name, default)
        if v is None and default is None:
            return []
        if not isinstance(v, list):
            self.fail(f"expected a list, got {type(v).__name__}", name)
        return v

    def numbers(self, name: str, default=_MISSING, *, lo: float | None = None) -> list[float]:
        items = self.list(name, default)
        sub = Fields({f"{name}[{i}]": x for i, x in enumerate(items)}, self.where, self.source)
        return [sub.number(f"{name}[{i}]", lo=lo) for i in range(len(items))]

    def dict(self, name: str, default=_MISSING) -> dict:
        v = self.raw(name, default)
        if v is None and default is None:
            return {}
        if not isinstance(v, dict):
            self.fail(f"expected an object, got {type(v).__name__}", name)
        return v

    def sub(self, name: str, default=_MISSING) -> "Fields":
        return Fields(self.dict(name, default), self._at(name), self.source)

    def each(self, name: str, make: Callable[["Fields"], Any], default=_MISSING) -> list:
        """``make(Fields(item))`` for every item of the list ``name``."""
        return [make(Fields(item, f"{self._at(name)}[{i}]", self.source))
                for i, item in enumerate(self.list(name, default))]
