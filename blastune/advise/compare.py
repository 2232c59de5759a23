"""``blastune compare a.json b.json``: the points two results files have in common, judged from
the raw samples (how: ``advise.significance``).

Sweep files: points match on ``match`` (default op, lib, size, dtype, threads). To compare thread
counts -- a sweep run with ``--threads 1`` against one with ``--threads 2`` -- match without threads
(``--match op,lib,size,dtype``); each side must then hold one point per matched key.
Jobs files: layouts match on their spec (``process:2x1``); each sample is one batch's wall time per
task, so files with different task counts compare fairly.

The ratio is b's median over a's (below 1: b is faster). A point disturbed on either side
(``SweepPoint.disturbed``: its threads waited for a CPU -- ``contended`` -- or 0.1.0's ``busy``)
is "not trusted", whatever the statistics say: the disturbance, not the change, may be what was
measured. ``unstable`` is shown, not judged: the test already weighs the scatter.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field

from blastune.advise.significance import ALPHA, EQUIVALENCE, holm, judge, mann_whitney_p
from blastune.errors import BlastuneError

SCHEMA = "blastune.compare/2"
KEY_FIELDS = ("op", "lib", "size", "dtype", "threads")


@dataclass
class CompareRow:
    op: str | None
    lib: str | None
    size: int | None
    dtype: str | None
    threads: int | None  # a's thread count (sweeps) or BLAS threads per worker (jobs)
    a_median_s: float | None = None
    b_median_s: float | None = None
    ratio: float | None = None  # b / a; None when undefined (a point missing, a median of zero)
    # faster | slower | not significant | too few samples | not trusted | only in a | only in b
    verdict: str = ""
    reason: str = ""
    p_value: float | None = None
    p_adjusted: float | None = None  # Holm-adjusted over every judged point
    n_a: int = 0
    n_b: int = 0
    a_flags: list[str] = field(default_factory=list)  # contended (wait %), busy, unstable
    b_flags: list[str] = field(default_factory=list)
    trusted: bool = True
    b_threads: int | None = None  # b's thread count when points were matched without threads
    layout: str | None = None  # jobs files: the layout spec
    test_verdict: str | None = None  # what the statistics said for a point that is not trusted


@dataclass
class Comparison:
    """The document ``compare --json`` prints: its fields, in this order."""

    schema: str
    a: str
    b: str
    kind: str  # sweep | jobs
    same_machine: bool
    match: list[str] = field(default_factory=lambda: list(KEY_FIELDS))
    alpha: float = ALPHA
    equivalence: float = EQUIVALENCE
    rows: list[CompareRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rows"] = [{k: _finite(v) for k, v in r.items()} for r in d["rows"]]
        return d


def _finite(v):
    """JSON has no Infinity or NaN: a non-finite figure is null (the row's reason says why)."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not a > 0:
        return None
    r = b / a
    return r if math.isfinite(r) else None


@dataclass
class _Side:
    """One side of a matched pair, in the terms the judgement needs."""

    median_s: float | None
    samples: list[float]
    disturbed: str | None  # why it cannot be trusted, or None
    flags: list[str]


def _side(m, samples: list[float], median_s, contended: bool, busy: bool = False) -> _Side:
    """``m`` (a sweep point or a jobs layout) as one side: a contended one is not trusted, nor --
    where the kernel's own measure is missing -- one 0.1.0's load probe found ``busy``."""
    flags, why = [], None
    if contended:
        why = f"contended ({m.wait_pct:.0f}% wait)" if m.wait_pct is not None else "contended"
        flags.append(why)
    elif busy:
        flags.append("busy")
        why = "busy: other programs used the CPUs"
    if m.unstable:
        flags.append("unstable")
    return _Side(median_s, samples, why, flags)


def _sweep_side(p) -> _Side:
    return _side(p, list(p.samples_s), p.median_s, p.contended, p.disturbed)


def _jobs_side(r, tasks: int) -> _Side:
    """Each sample is one batch's wall time per task."""
    per_task = [w / tasks for w in r.walls]
    return _side(r, per_task, statistics.median(per_task) if per_task else None, r.contended)


def parse_match(text) -> list[str]:
    """'op,size' (or ['op', 'size']) -> ['op', 'size']: the point fields two sweep points must share
    to be compared."""
    if text is None:
        return list(KEY_FIELDS)
    if isinstance(text, (list, tuple)):
        text = ",".join(text)
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    bad = [n for n in names if n not in KEY_FIELDS]
    if bad or not names:
        raise BlastuneError(
            f"invalid --match {text!r}: give point fields from {', '.join(KEY_FIELDS)} "
            "(e.g. op,lib,size,dtype to compare across thread counts)"
        )
    return [n for n in KEY_FIELDS if n in names]


def _index(points, match: list[str], path) -> dict[tuple, object]:
    out: dict[tuple, object] = {}
    for p in points:
        k = tuple(getattr(p, n) for n in match)
        if k in out:
            raise BlastuneError(
                f"{path} has several points for {' '.join(map(str, k))} when matched on "
                f"{','.join(match)}: add the field that tells them apart to --match"
            )
        out[k] = p
    return out


def compare(path_a, path_b, match=None) -> Comparison:
    """Compare two results files of the same kind (see the module docstring)."""
    from blastune.documents.measured import load_measured

    kind_a, a = load_measured(path_a, "compare")
    kind_b, b = load_measured(path_b, "compare")
    if kind_a != kind_b:
        raise BlastuneError(
            f"{path_a} holds {kind_a} results and {path_b} {kind_b} results: compare two of a kind"
        )
    fields = parse_match(match)
    same = (a.fingerprint or {}).get("id") == (b.fingerprint or {}).get("id")
    out = Comparison(
        schema=SCHEMA, a=str(path_a), b=str(path_b), same_machine=same, kind=kind_a, match=fields
    )
    if not same:
        out.notes.append(
            "the files come from different machines or BLAS builds (fingerprints differ)"
        )
    if kind_a == "sweep":
        pairs = _sweep_pairs(a, b, fields, path_a, path_b)
    else:
        if match is not None and fields != list(KEY_FIELDS):
            raise BlastuneError("--match applies to sweep files; jobs layouts match on their spec")
        pairs = _jobs_pairs(a, b, out)
    _judge_all(pairs, out)
    if all(r.verdict in ("only in a", "only in b") for r in out.rows):
        out.notes.append("no point appears in both files")
        if (
            kind_a == "sweep"
            and "threads" in fields
            and {p.threads for p in a.points}.isdisjoint(p.threads for p in b.points)
        ):
            out.notes.append(
                "the files share no thread count: --match op,lib,size,dtype compares across them"
            )
    return out


def _sweep_pairs(a, b, fields, path_a, path_b):
    pa, pb = _index(a.points, fields, path_a), _index(b.points, fields, path_b)
    pairs = []
    for key in list(pa) + [k for k in pb if k not in pa]:
        x, y = pa.get(key), pb.get(key)
        ref = x or y
        row = CompareRow(ref.op, ref.lib, ref.size, ref.dtype, x.threads if x else y.threads)
        if x and y and y.threads != x.threads:
            row.b_threads = y.threads
        pairs.append((row, x and _sweep_side(x), y and _sweep_side(y)))
    return pairs


def _jobs_pairs(a, b, out: Comparison):
    if a.workload.key != b.workload.key:
        out.notes.append(
            f"the files measured different workloads (a: {a.workload.describe()}, "
            f"b: {b.workload.describe()}): per-task times compare different work"
        )
    ra = {r.layout.spec: r for r in a.results}
    rb = {r.layout.spec: r for r in b.results}
    pairs = []
    w = a.workload  # an op names its library and dtype; the other kinds do not
    what = (w.name, w.lib, w.size, w.dtype) if w.kind == "op" else (w.kind, None, w.size, None)
    for spec in list(ra) + [s for s in rb if s not in ra]:
        x, y = ra.get(spec), rb.get(spec)
        sx, sy = x and _jobs_side(x, x.tasks or a.tasks), y and _jobs_side(y, y.tasks or b.tasks)
        pairs.append((CompareRow(*what, (x or y).layout.threads, layout=spec), sx, sy))
    return pairs


def _judge_all(pairs, out: Comparison) -> None:
    """Test every pair present on both sides; Holm over the trusted ones (the judged family)."""
    tested = []
    for row, x, y in pairs:
        out.rows.append(row)
        row.a_median_s, row.b_median_s = x and x.median_s, y and y.median_s
        if x is None or y is None:
            row.verdict = "only in a" if x else "only in b"
            continue
        row.ratio = _ratio(x.median_s, y.median_s)
        row.n_a, row.n_b = len(x.samples), len(y.samples)
        row.a_flags, row.b_flags = x.flags, y.flags
        row.p_value = mann_whitney_p(x.samples, y.samples)
        row.trusted = x.disturbed is None and y.disturbed is None
        if row.trusted and row.p_value is not None:
            tested.append(row)
    adjusted = holm([r.p_value for r in tested])
    for r, adj in zip(tested, adjusted):
        r.p_adjusted = adj
    m = len(tested)
    for row, x, y in pairs:
        if x is None or y is None:
            continue
        verdict, reason = judge(
            row.ratio, row.n_a, row.n_b, row.p_value, row.p_adjusted, m, out.alpha, out.equivalence
        )
        if row.trusted:
            row.verdict, row.reason = verdict, reason
            continue
        row.test_verdict = verdict
        sides = [f"{s}: {d.disturbed}" for s, d in (("a", x), ("b", y)) if d.disturbed]
        row.verdict = "not trusted"
        row.reason = f"disturbed while measured ({'; '.join(sides)})"
