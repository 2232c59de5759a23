"""A ``Comparison`` (``blastune.advise.compare``) as table rows and notes: what `blastune compare`
prints, built from the model."""

from __future__ import annotations

from blastune.present.rows import fmt_time, number
from blastune.present.tables import fit_table


def _point_cells(r, cmp, several_libs: bool) -> list:
    if cmp.kind == "jobs":
        return [r.layout]
    threads = r.threads if r.b_threads in (None, r.threads) else f"{r.threads} vs {r.b_threads}"
    return [r.op, *([r.lib] if several_libs else []), r.size, r.dtype, threads]


def _flags(r) -> str:
    return "; ".join(
        f"{side}: {', '.join(flags)}"
        for side, flags in (("a", r.a_flags), ("b", r.b_flags))
        if flags
    )


def compare_rows(cmp) -> tuple[list[str], list[list], list[str]]:
    """(headers, rows, reasons): a verdict that is not faster/slower points at its reason, '[1]'."""
    several_libs = len({r.lib for r in cmp.rows}) > 1  # numpy and scipy rows would look the same
    head = (
        ["layout"]
        if cmp.kind == "jobs"
        else ["op", *(["lib"] if several_libs else []), "n", "dtype", "threads"]
    )
    reasons: list[str] = []
    rows = []
    for r in cmp.rows:
        verdict = r.verdict
        if r.reason and r.verdict not in ("faster", "slower"):
            if r.reason not in reasons:
                reasons.append(r.reason)
            verdict += f" [{reasons.index(r.reason) + 1}]"
        p = r.p_adjusted if r.p_adjusted is not None else r.p_value
        rows.append(
            [
                *_point_cells(r, cmp, several_libs),
                fmt_time(r.a_median_s),
                fmt_time(r.b_median_s),
                number(r.ratio, ".3f"),
                number(p, ".2g"),
                verdict,
                _flags(r),
            ]
        )
    headers = [*head, "a median", "b median", "b / a", "p", "b is", "flags"]
    return headers, rows, reasons


def compare_notes(cmp, reasons: list[str]) -> list[str]:
    """The lines below the table: the reasons, how to read it, the notes."""
    unit = "per task" if cmp.kind == "jobs" else "per call"
    return [
        *(f"[{i}] {text}" for i, text in enumerate(reasons, 1)),
        f"medians {unit}; b / a below 1: b is faster. p: Mann-Whitney U on the samples, after "
        "Holm's",
        f"correction over the judged points; faster/slower needs p < {cmp.alpha:g} and b / a "
        f"beyond ±{cmp.equivalence:.0%}.",
        "A point contended (or busy) on either side is not trusted: re-run it on a quiet machine.",
        *(f"note: {n}" for n in cmp.notes),
    ]


def render_compare(cmp, fmt: str = "simple", wide: bool = False) -> str:
    """``blastune compare``'s text: the two files, the table fitted to the terminal, its notes."""
    headers, rows, reasons = compare_rows(cmp)
    lines = [f"a = {cmp.a}", f"b = {cmp.b}", fit_table(rows, headers, fmt, wide=wide)]
    return "\n".join(lines + compare_notes(cmp, reasons))
