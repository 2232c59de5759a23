"""``blastune compare a.json b.json``: the same sweep points from two results files, side by side.

Points match on (op, lib, size, dtype, threads). The ratio is b's median over a's (above 1: b is
slower). A difference smaller than twice the larger of the two spreads is called "same": with the
noise the files themselves report, it is not a difference.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from blastune.measure.sweep.core import KEY_FIELDS, point_key


@dataclass
class CompareRow:
    op: str
    lib: str
    size: int
    dtype: str
    threads: int
    a_median_s: float | None
    b_median_s: float | None
    ratio: float | None          # b / a
    verdict: str                 # faster | slower | same | only in a | only in b


@dataclass
class Comparison:
    schema: str
    a: str
    b: str
    same_machine: bool
    rows: list[CompareRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self):
        return {"schema": self.schema, "a": self.a, "b": self.b, "same_machine": self.same_machine,
                "rows": [asdict(r) for r in self.rows], "notes": self.notes}


def _verdict(a: dict, b: dict, ratio: float) -> str:
    noise = 2 * max(a.get("spread") or 0, b.get("spread") or 0, 0.01)
    if abs(ratio - 1) <= noise:
        return "same"
    return "slower" if ratio > 1 else "faster"


def compare(path_a, path_b) -> Comparison:
    from blastune.measure.sweep.core import load_sweep

    a, b = load_sweep(path_a), load_sweep(path_b)
    pa = {point_key(p): p for p in a["points"]}
    pb = {point_key(p): p for p in b["points"]}
    same = (a.get("fingerprint") or {}).get("id") == (b.get("fingerprint") or {}).get("id")
    out = Comparison(schema="blastune.compare/1", a=str(path_a), b=str(path_b), same_machine=same)
    if not same:
        out.notes.append("the files come from different machines or BLAS builds (fingerprints differ)")
    for key in list(pa) + [k for k in pb if k not in pa]:
        x, y = pa.get(key), pb.get(key)
        fields = dict(zip(KEY_FIELDS, key))
        if x and y:
            ratio = y["median_s"] / x["median_s"] if x["median_s"] > 0 else None
            verdict = _verdict(x, y, ratio) if ratio is not None else "?"
            out.rows.append(CompareRow(**fields, a_median_s=x["median_s"], b_median_s=y["median_s"],
                                       ratio=ratio, verdict=verdict))
        else:
            out.rows.append(CompareRow(**fields, a_median_s=x and x["median_s"], b_median_s=y and y["median_s"],
                                       ratio=None, verdict="only in a" if x else "only in b"))
    if not any(r.ratio is not None for r in out.rows):
        out.notes.append("no point appears in both files")
    return out
