"""A sweep document as table rows and notes: the cells `blastune sweep` prints and the HTML
report shows, built by the same functions from the typed ``SweepDocument``.

Each judgement is read, not made, here: disturbed, unstable, oversubscribed and ran-as-asked are
``SweepPoint`` properties; the flags of figures beyond a physical bound come with the point.
"""

from __future__ import annotations

from blastune.present.rows import NO_VALUE, flagged, fmt_time, gflops_text, number
from blastune.present.tables import fit_table

# the reasons of a figure beyond a physical bound (it is shown with a '!', rows.flagged)
FLAG_NOTES = {
    "efficiency": "eff. > 100%: noise",
    "speedup": "speed-up > threads: noise",
    "peak_pct": "> nominal peak: clock above nominal",
}

SHORT_DTYPE = {"float32": "f32", "float64": "f64", "complex64": "c64", "complex128": "c128"}


def threads_cell(p) -> str:
    """'2*': the count asked for, starred where it is the best count of its group."""
    return f"{p.threads}{'*' if p.best else ''}"


def spread_cell(p) -> str:
    """The spread, or NO_VALUE where too few samples give none."""
    from blastune.measure.timing import MIN_SPREAD_REPEATS

    if p.spread is None or (p.repeats or 0) < MIN_SPREAD_REPEATS:
        return NO_VALUE
    return f"{p.spread:.1%}"


def gflops_cell(p) -> str:
    return gflops_text(p.gflops, p.flops_nominal)


def speedup_cell(p) -> str:
    return flagged(number(p.speedup, ".2f", "x"), "speedup", p.flags)


def efficiency_cell(p) -> str:
    return flagged(number(p.efficiency, ".0%"), "efficiency", p.flags)


def point_notes(p) -> list[str]:
    """What a reader must know to weigh the point's time, in the words every table uses."""
    notes = []
    if p.disturbed:
        if p.wait_pct is None and p.other_load_cores is not None:
            notes.append(f"busy ({p.other_load_cores:.1f} cores used by others)")
        else:
            notes.append("contended")
    if p.unstable:
        notes.append("unstable")
    if p.isolated:
        notes.append("worker")
    if not p.ran_as_asked:
        notes.append(f"ran {p.threads_ran}")
    if p.oversubscribed:
        notes.append("oversubscribed")
    return notes + [FLAG_NOTES[k] for k in p.flags if k in FLAG_NOTES]


def notes_cell(p) -> str:
    return ", ".join(point_notes(p))


def libs_of(doc) -> list[str]:
    """The libraries the points called (the grid's when there is none)."""
    return list(dict.fromkeys(p.lib for p in doc.points)) or [doc.grid.lib]


def point_table(doc, columns) -> tuple[list[str], list[list]]:
    """(headers, rows) of ``columns`` -- (header, ..., cell of a point) -- over the points; the lib
    column only where a file holds both libs (resumed with the other --lib: without it their rows
    look the same)."""
    if len(libs_of(doc)) < 2:
        columns = [c for c in columns if c[0] != "lib"]
    return [c[0] for c in columns], [[c[-1](p) for c in columns] for p in doc.points]


# the terminal's columns: (header, cell of a point)
COLUMNS = (
    ("op", lambda p: p.op),
    ("lib", lambda p: p.lib),
    ("n", lambda p: p.size),
    ("dtype", lambda p: SHORT_DTYPE.get(p.dtype, p.dtype)),
    ("thr", threads_cell),
    ("median", lambda p: fmt_time(p.median_s)),
    ("reps", lambda p: p.repeats),
    ("spread", spread_cell),
    ("GFLOP/s", gflops_cell),
    ("speedup", speedup_cell),
    ("eff.", efficiency_cell),
    ("peak", lambda p: flagged(number(p.peak_pct, ".0f", "%"), "peak_pct", p.flags)),
    ("wait", lambda p: number(p.wait_pct, ".0f", "%", NO_VALUE)),
    ("notes", notes_cell),
)


def sweep_rows(doc) -> tuple[list[str], list[list]]:
    """(headers, rows) of the terminal table."""
    return point_table(doc, COLUMNS)


def sweep_head(doc) -> list[str]:
    """The lines above the table: what each lib called, and the CPU."""
    lines = []
    for lib in libs_of(doc):
        blas = doc.blas(lib)
        if blas:
            lines.append(
                f"{lib} calls {blas.get('vendor')} {blas.get('version') or '?'} "
                f"({blas.get('threading_layer') or '?'}, {blas.get('architecture') or '?'})"
            )
    cpu = doc.cpu
    lines.append(
        f"{cpu.model or '?'}, {cpu.usable_cores or '?'} usable cores, nominal peak "
        f"{cpu.peak_gflops_per_core or '?'} GFLOP/s per core (FP64)"
    )
    return lines


def crossover_line(c, several_libs: bool) -> str:
    """'crossover: dot: more threads pay off at n >= 256 (some points unstable: re-check)'."""
    return (
        f"crossover: {c.op}{'' if c.dtype == 'float64' else ' ' + c.dtype}"
        f"{' (' + c.lib + ')' if several_libs else ''}: more threads pay off "
        f"{'at ' if c.status == 'at' else ''}{c.describe()}"
        f"{' (' + c.caveat() + ')' if c.caveat() else ''}"
    )


def sweep_notes(doc, crossovers=()) -> list[str]:
    """The lines below the table: the legend, the crossovers, what was skipped, the warnings."""
    lines = [
        "thr: threads asked for; *: the best count for that op, size and dtype -- the fewest "
        "threads within noise of the fastest (1 for add, sin, norm_isf: BLAS does not run them).",
        f"spread: relative standard error of the median ({NO_VALUE} below 3 reps). ~: nominal "
        "FLOP count. !: beyond a physical bound, not a fact (see notes). peak: % of the nominal "
        "peak.",
    ]
    threshold, source = doc.contended_wait_pct, doc.contention_source
    if source == "schedstat":
        lines.append(
            "wait: time the working threads waited for a CPU, in % of the sample time"
            + (
                f" (kernel schedstat); contended: above {threshold:g}% that others' CPU explains."
                if threshold is not None
                else "."
            )
        )
    elif source:
        lines.append(
            "contention: judged from the CPU time other processes used (no per-thread schedstat "
            "here): points shorter than 0.5 s cannot be judged."
        )
    if not all(p.ran_as_asked for p in doc.points):
        lines.append(
            "ran N: the library ran N threads, not the count asked for; its figures are judged "
            "by N."
        )
    if any(p.isolated for p in doc.points):
        lines.append(
            "worker: measured in a fresh process started with the thread variables set "
            f"({doc.isolation or 'the library reads them only at start-up'})."
        )
    several_libs = len(libs_of(doc)) > 1
    lines += [crossover_line(c, several_libs) for c in crossovers]
    if doc.skipped:
        lines.append("skipped (op cannot take that dtype): " + ", ".join(doc.skipped))
    lines += [f"warning: {w}" for w in doc.warnings]
    if doc.status != "complete":
        lines.append(f"status: {doc.status}")
    return lines


def render_sweep(doc, fmt: str = "simple", crossovers=(), wide: bool = False) -> str:
    """``blastune sweep``'s text: what ran, the table fitted to the terminal, its notes."""
    headers, rows = sweep_rows(doc)
    table = fit_table(rows, headers, fmt, wide=wide)
    return "\n".join([*sweep_head(doc), table, *sweep_notes(doc, crossovers)])
