"""The crossover size per op: the smallest matrix size from which more threads pay off.

Small matrices often run *slower* with threads (starting and synchronizing them costs more than the
work they share), large ones faster. Per (op, lib, dtype), at each measured size we ask the sweep's
own question -- is the best thread count (the fewest threads within noise of the fastest) above the
fewest threads measured? -- and the crossover is the smallest size from which the answer is yes at
that size and at every larger size measured. So one noisy "yes" at a small size below a "no" does not
make a crossover, and the answer never claims more than the sizes measured can tell:

* ``at``: more threads pay from ``size`` on, and did not at the next smaller size measured;
* ``below``: they pay already at the smallest size measured (the crossover is at or below it);
* ``never``: they paid at no size up to the largest measured (``size`` is None).
"""
from __future__ import annotations

from dataclasses import dataclass, field

NOISE = 0.02  # the sweep's own floor for "within noise of the fastest"


@dataclass
class Crossover:
    op: str
    lib: str
    dtype: str
    status: str                       # "at" | "below" | "never"
    size: int | None                  # the crossover size (None: never within the sizes measured)
    sizes: list[int] = field(default_factory=list)          # sizes measured, ascending
    best_threads: dict[int, int] = field(default_factory=dict)  # size -> best thread count
    fewest_threads: int = 1
    disturbed: bool = False           # a point of this op was contended, busy or unstable

    def describe(self) -> str:
        """'n >= 256', 'at every size measured (n >= 200, the smallest)', 'at no size up to n = 1000'."""
        if self.status == "at":
            return f"n >= {self.size}"
        if self.status == "below":
            return f"at every size measured (n >= {self.size}, the smallest)"
        return f"at no size up to n = {self.sizes[-1]}" if self.sizes else "at no size measured"

    def to_dict(self) -> dict:
        return {"op": self.op, "lib": self.lib, "dtype": self.dtype, "status": self.status, "size": self.size,
                "sizes": list(self.sizes), "best_threads": {str(k): v for k, v in self.best_threads.items()},
                "fewest_threads": self.fewest_threads, "disturbed": self.disturbed,
                "describe": self.describe()}


def _get(p, name):
    return p.get(name) if isinstance(p, dict) else getattr(p, name, None)


def _ran(p) -> int:
    ran = _get(p, "threads_ran")
    return ran if isinstance(ran, int) and ran > 0 else _get(p, "threads")


def _best_threads(pts) -> int:
    """The fewest threads whose median is within noise of the fastest (the sweep's 'best' rule); a
    count the library did not run (ATLAS asked for 2 runs 1) cannot be the best."""
    ok = [p for p in pts if _ran(p) == _get(p, "threads")] or [min(pts, key=lambda p: _get(p, "threads"))]
    fastest = min(ok, key=lambda p: _get(p, "median_s"))
    for p in sorted(ok, key=lambda p: _get(p, "threads")):
        tol = max(NOISE, 2 * max(_get(p, "spread") or 0, _get(fastest, "spread") or 0))
        if _get(p, "median_s") <= _get(fastest, "median_s") * (1 + tol):
            return _get(p, "threads")
    return _get(fastest, "threads")


def crossover_sizes(document) -> list[Crossover]:
    """One ``Crossover`` per (op, lib, dtype) of a sweep document (a dict or a SweepDocument) that
    BLAS runs and that was measured at two or more thread counts, in the document's order."""
    points = _get(document, "points") or []
    groups: dict[tuple, dict[int, list]] = {}
    for p in points:
        if _get(p, "blas_op") is False:  # add, sin, norm_isf: BLAS threads cannot pay off there
            continue
        key = (_get(p, "op"), _get(p, "lib"), _get(p, "dtype"))
        groups.setdefault(key, {}).setdefault(_get(p, "size"), []).append(p)
    out = []
    for (op, lib, dtype), by_size in groups.items():
        sizes = sorted(s for s, pts in by_size.items() if len({_get(p, "threads") for p in pts}) > 1)
        if not sizes:
            continue
        best = {s: _best_threads(by_size[s]) for s in sizes}
        fewest = {s: min(_get(p, "threads") for p in by_size[s]) for s in sizes}
        pays = [best[s] > fewest[s] for s in sizes]
        start = len(sizes)
        while start > 0 and pays[start - 1]:
            start -= 1
        if start == len(sizes):
            status, size = "never", None
        else:
            status, size = ("below" if start == 0 else "at"), sizes[start]
        disturbed = any(_get(p, "contended") or _get(p, "busy") or _get(p, "unstable")
                        for s in sizes for p in by_size[s])
        out.append(Crossover(op, lib, dtype, status, size, sizes, best, min(fewest.values()), disturbed))
    return out
