"""The crossover size per op: the smallest matrix size from which more threads pay off.

Small matrices often run *slower* with threads (starting and synchronizing them costs more than the
work they share), large ones faster. Per (op, lib, dtype), at each measured size we ask the sweep's
own question -- is the best thread count (the fewest threads within noise of the fastest) above
the fewest threads measured? -- and the crossover is the smallest size from which the answer is yes
at that size and at every larger size measured. So one noisy "yes" at a small size below a "no"
does not make a crossover, and the answer never claims more than the sizes measured can tell:

* ``at``: more threads pay from ``size`` on, and did not at the next smaller size measured;
* ``below``: they pay already at the smallest size measured (the crossover is at or below it);
* ``never``: they paid at no size up to the largest measured (``size`` is None).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from blastune.documents.sweep import SweepDocument
from blastune.measure.sweep.points import best_point


@dataclass
class Crossover:
    op: str
    lib: str
    dtype: str
    status: str  # "at" | "below" | "never"
    size: int | None  # the crossover size (None: never within the sizes measured)
    sizes: list[int] = field(default_factory=list)  # sizes measured, ascending
    best_threads: dict[int, int] = field(default_factory=dict)  # size -> best thread count
    fewest_threads: int = 1
    disturbed: bool = False  # others took CPU from a point of this op (SweepPoint.disturbed)
    unstable: bool = False  # a point's times never settled (nothing says others caused it)

    def describe(self) -> str:
        """'n >= 256', 'at every size measured (n >= 200, the smallest)', 'at no size up to
        n = 1000'."""
        if self.status == "at":
            return f"n >= {self.size}"
        if self.status == "below":
            return f"at every size measured (n >= {self.size}, the smallest)"
        return f"at no size up to n = {self.sizes[-1]}" if self.sizes else "at no size measured"

    def caveat(self) -> str | None:
        """Why the answer may not hold, in the words every renderer prints; None if nothing."""
        said = [w for w, on in (("disturbed", self.disturbed), ("unstable", self.unstable)) if on]
        return f"some points {' or '.join(said)}: re-check" if said else None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["best_threads"] = {str(k): v for k, v in self.best_threads.items()}  # JSON keys: strings
        return {**d, "caveat": self.caveat(), "describe": self.describe()}


def crossover_sizes(document: SweepDocument) -> list[Crossover]:
    """One ``Crossover`` per (op, lib, dtype) of a sweep document that BLAS runs and that was
    measured at two or more thread counts, in the document's order. The best count at each size is
    the sweep's own (``best_point``)."""
    groups: dict[tuple, dict[int, list]] = {}
    for (op, lib, size, dtype), pts in document.groups().items():
        if not pts[0].blas_op:  # add, sin, norm_isf: BLAS threads cannot pay off there
            continue
        groups.setdefault((op, lib, dtype), {})[size] = pts
    out = []
    for (op, lib, dtype), by_size in groups.items():
        sizes = sorted(s for s, pts in by_size.items() if len({p.threads for p in pts}) > 1)
        if not sizes:
            continue
        best = {s: best_point(by_size[s]).threads for s in sizes}
        fewest = {s: by_size[s][0].threads for s in sizes}  # groups() sorts fewest threads first
        pays = [best[s] > fewest[s] for s in sizes]
        start = len(sizes)
        while start > 0 and pays[start - 1]:
            start -= 1
        if start == len(sizes):
            status, size = "never", None
        else:
            status, size = ("below" if start == 0 else "at"), sizes[start]
        pts = [p for s in sizes for p in by_size[s]]
        out.append(
            Crossover(
                op,
                lib,
                dtype,
                status,
                size,
                sizes,
                best,
                min(fewest.values()),
                disturbed=any(p.disturbed for p in pts),
                unstable=any(p.unstable for p in pts),
            )
        )
    return out
