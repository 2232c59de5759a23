"""The jobs table, written once: ``blastune jobs`` prints it and the HTML report shows it, both from
``jobs_rows`` (the same cells, the same marks, the same notes)."""

from __future__ import annotations

from blastune.present.rows import NO_VALUE, flagged, number
from blastune.present.tables import fit_table

JOBS_HEADERS = [
    "layout",
    "BLAS thr.",
    "wall s",
    "spread",
    "tasks/s",
    "speed-up",
    "busy cores",
    "CPU eff.",
    "wait",
]
JOBS_LEGEND = (
    "speed-up: layout tasks/s / serial tasks/s; busy cores: CPU s / wall s; CPU eff.: "
    "serial CPU s / layout CPU s per task; spread: standard error of the median (3+ "
    "repeats, else —); wait: run-queue wait of its threads (C = contended by other programs, "
    "s = self-inflicted by oversubscription); ! = beyond physical bounds (see notes)"
)


def jobs_threads(r) -> str:
    if r.layout.threads is not None:
        return str(r.layout.threads)
    return f"default ({r.threads_seen})" if r.threads_seen else "default"


def jobs_rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def jobs_wait(r) -> str:
    """'13%', '40% C' (contended by other programs), '25% s' (self-inflicted oversubscription)."""
    if r.wait_pct is None:
        return NO_VALUE
    mark = " C" if r.contended else (" s" if r.self_oversubscribed and r.wait_pct > 5 else "")
    return f"{r.wait_pct:.0f}%{mark}"


def jobs_rows(res) -> tuple[list[list[str]], list[str]]:
    """The rows of ``JOBS_HEADERS`` and the numbered notes their ``[n]`` marks point to."""
    rows, notes = [], []
    for r in res.results:
        why = list(r.notes) + [f"{k}: {v}" for k, v in r.beyond_bounds.items()]
        mark = ""
        if why:
            notes.append(
                f"[{len(notes) + 1}] {r.layout.head} x {jobs_threads(r)}: " + "; ".join(why)
            )
            mark = f" [{len(notes)}]"
        eff = None if r.cpu_efficiency is None else 100 * r.cpu_efficiency
        rows.append(
            [
                r.layout.head + mark,
                jobs_threads(r),
                number(r.wall_s, ".3f", missing="?"),
                number(None if r.spread is None else 100 * r.spread, ".1f", "%", NO_VALUE),
                jobs_rate(r.tasks_per_s),
                flagged(number(r.speedup, ".2f", "x", "?"), "speedup", r.beyond_bounds),
                number(r.busy_cores, ".2f", missing="?"),
                flagged(number(eff, ".0f", "%", "?"), "cpu_efficiency", r.beyond_bounds),
                jobs_wait(r),
            ]
        )
    return rows, notes


def fastest_line(res) -> str:
    best = res.best
    return (
        f"fastest: {best.layout.label} ({jobs_rate(best.tasks_per_s)} tasks/s, "
        f"{number(best.speedup, '.2f', 'x', '?')} serial)"
        + (" -- contended, not advice" if best.contended else "")
    )


def render_jobs(res, fmt: str = "simple", wide: bool = False) -> str:
    """``blastune jobs``'s text: what ran, the table, its notes, the fastest layout, the legend."""
    rows, notes = jobs_rows(res)
    head = (
        f"{res.tasks} tasks of {res.workload.describe()}; {res.repeats} repeat(s), median shown; "
        f"{res.usable_cores} usable cores"
    )
    more = [
        f"{r.layout.head} x {jobs_threads(r)} ran {r.tasks:,}"
        for r in res.results
        if r.tasks is not None and r.tasks != res.tasks
    ]
    if more:
        head += "; more tasks where a batch was short: " + ", ".join(more)
    if res.status == "interrupted":
        head += "; INTERRUPTED (partial)"
    out = [head, fit_table(rows, JOBS_HEADERS, fmt, wide=wide), *notes, fastest_line(res)]
    out.append(JOBS_LEGEND)
    out += [f"warning: {m}" for m in res.warnings]
    return "\n".join(out)
