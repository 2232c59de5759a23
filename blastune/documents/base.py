"""Typed access to saved documents: every field read through one path, one error line naming it.

A model's fields say once how each is saved: ``field_of("seconds", None)`` is the kind and bounds
``read_model`` reads it by and ``plain`` writes it back under its name. Every read goes through
``Fields``; anything malformed -- a missing key, a string where a number belongs, NaN, a bool where
a count belongs -- raises ``DocumentError`` with the file and the field path (``results.json:
points[3].median_s: expected a number >= 0, got 'x'``). Nothing else in blastune walks raw dicts
of a saved document.
"""

from __future__ import annotations

import math
from dataclasses import field, fields
from typing import Any, Callable

from blastune.core.counts import MAX_THREADS, whole_number
from blastune.errors import BlastuneError

_MISSING = object()

# Physically sensible times, in seconds. No run lasts 31 years (1e9 s), and no call is faster than a
# picosecond (a cycle at 5 GHz is 200 ps): between them every figure derived from a time (FLOP/s,
# speed-ups, error bars) stays a finite, ordinary float, so a reader never divides into inf or 0.
MAX_SECONDS = 1e9
MIN_CALL_SECONDS = 1e-12


class DocumentError(BlastuneError):
    """A saved document is malformed; the message names the file and the field."""


def unsupported_schema(schema: str, major: int) -> str | None:
    """Why ``schema`` ("blastune.sweep/2") is not a version this code reads, or None when it is."""
    version = schema.partition("/")[2]
    if version.split(".")[0] == str(major):
        return None
    return f"schema {schema} is not supported (this blastune reads version {major})"


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

    def _typed(self, name: str, default, cls: type, expected: str, empty=None):
        """The value at ``name`` if it is a ``cls``; ``empty`` when it is null or absent and the
        default is None."""
        v = self.raw(name, default)
        if v is None and default is None:
            return empty
        if not isinstance(v, cls):
            got = repr(v) if empty is None else type(v).__name__  # a list's type, not its items
            self.fail(f"expected {expected}, got {got}", name)
        return v

    def str(self, name: str, default=_MISSING, *, choices=None) -> str | None:
        v = self._typed(name, default, str, "a string")
        if v is not None and choices is not None and v not in choices:
            self.fail(f"expected one of {', '.join(map(str, choices))}, got {v!r}", name)
        return v

    def bool(self, name: str, default=_MISSING) -> bool | None:
        return self._typed(name, default, bool, "true or false")

    def number(
        self, name: str, default=_MISSING, *, lo: float | None = None, hi: float | None = None
    ) -> float | None:
        v = self.raw(name, default)
        if v is None and default is None:
            return None
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        if not ok or (lo is not None and v < lo) or (hi is not None and v > hi):
            if lo is not None and hi is not None:
                bound = f" from {lo:g} to {hi:g}"
            else:
                bound = (f" >= {lo:g}" if lo is not None else "") + (
                    f" <= {hi:g}" if hi is not None else ""
                )
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

    def threads(self, name: str, default=_MISSING, *, lo: int = 1) -> int | None:
        """A thread or worker count: what a C int holds (``core.counts.MAX_THREADS``)."""
        return self.count(name, default, lo=lo, hi=MAX_THREADS)

    def seconds(self, name: str, default=_MISSING, *, lo: float = 0.0) -> float | None:
        """A duration: finite, from ``lo`` to ``MAX_SECONDS``."""
        return self.number(name, default, lo=lo, hi=MAX_SECONDS)

    def list(self, name: str, default=_MISSING) -> list:
        return self._typed(name, default, list, "a list", [])

    def items(
        self, name: str, default=_MISSING, *, of: str = "str", item=_MISSING, **bounds
    ) -> list:
        """``self.<of>`` of every item of the list ``name`` (``item=None``: an item may be null),
        so an error names ``name[i]``."""
        items = self.list(name, default)
        sub = Fields({f"{name}[{i}]": x for i, x in enumerate(items)}, self.where, self.source)
        return [getattr(sub, of)(key, item, **bounds) for key in sub.data]

    def ordered(self, names, values) -> None:
        """Refuse figures out of their natural order (min <= q1 <= median <= q3 <= max): one read
        against the others is not a measurement, and a reader drawing error bars trips on it."""
        present = [(n, v) for n, v in zip(names, values) if v is not None]
        for (n1, v1), (n2, v2) in zip(present, present[1:]):
            if v1 > v2 + abs(v2) * 1e-9:  # interpolated quartiles may be an ulp off a sample
                self.fail(f"expected at most {n2} ({v2!r}), got {v1!r}", n1)

    def dict(self, name: str, default=_MISSING) -> dict:
        return self._typed(name, default, dict, "an object", {})

    def sub(self, name: str, default=_MISSING) -> "Fields":
        return Fields(self.dict(name, default), self._at(name), self.source)

    def mapping(
        self, name: str, default=_MISSING, *, of: str = "str", item=_MISSING, **bounds
    ) -> dict:
        """``self.<of>`` of every value of the object ``name``, keyed as it is."""
        sub = self.sub(name, default)
        return {key: getattr(sub, of)(key, item, **bounds) for key in sub.data}

    def each(self, name: str, make: Callable[["Fields"], Any], default=_MISSING) -> list:
        """``make(Fields(item))`` for every item of the list ``name``."""
        return [make(item) for item in self.items(name, default, of="sub")]


# the kinds that read a list or an object: a model holds an empty one when the key is absent
_CONTAINERS = {"items": list, "mapping": dict}
# field_of(new=REQUIRED): the model has no default, though the document may leave the key out
REQUIRED = _MISSING
_AS_READ = object()


def field_of(kind: str, default=_MISSING, *, new=_AS_READ, **bounds) -> Any:
    """A model's field, saved under its name and read by ``Fields.<kind>(name, default, **bounds)``
    (no ``default``: the key must be there). The model's own default is ``new`` when given, else
    ``default``; for a list or an object, an empty one."""
    meta = {"read": (kind, default, bounds)}
    if kind in _CONTAINERS:
        return field(default_factory=_CONTAINERS[kind], metadata=meta)
    new = default if new is _AS_READ else new
    return field(metadata=meta) if new is REQUIRED else field(default=new, metadata=meta)


def read_model(cls, f: Fields, **given):
    """``cls`` from ``f``: each ``field_of`` field read by its kind, in the order declared, unless
    ``given`` holds it. Keys the model does not know go to its ``extra``, when it has one (so a
    newer file survives being read and saved again)."""
    values = {}
    for x in fields(cls):
        if "read" in x.metadata and x.name not in given:
            kind, default, bounds = x.metadata["read"]
            values[x.name] = getattr(f, kind)(x.name, default, **bounds)
    values.update(given)
    names = {x.name for x in fields(cls)}
    if "extra" in names:
        values["extra"] = {k: v for k, v in f.data.items() if k not in names}
    return cls(**values)


def plain(model) -> dict:
    """A model as its JSON object: every field under its name, in the order declared (a nested
    model by its ``to_dict``; lists and objects copied), then the keys of its ``extra``."""
    out = {x.name: _plain(getattr(model, x.name)) for x in fields(model) if x.name != "extra"}
    return {**out, **getattr(model, "extra", {})}


def _plain(value):
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def read_schema(f: Fields, kind: str, major: int, default=_MISSING, *, named: str = "") -> str:
    """The document's ``schema``, refused unless it is ``blastune.<kind>/<major>...``: a newer
    layout is refused, not guessed at. ``named``: how the refusal names the kind expected."""
    schema = f.str("schema", default)
    if schema.partition("/")[0] != f"blastune.{kind}":
        f.fail(f"expected a {named or 'blastune.' + kind} document, got {schema!r}", "schema")
    why = unsupported_schema(schema, major)
    if why:
        raise DocumentError(f"{f.source}: {why}" if f.source else why)
    return schema
