"""Figures from saved documents: the one plotting module (``blastune plot``, ``sweep --plot``, the
report).

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot: no global state, safe to make
several in one process) and returned, so tests read their axes, labels and lines, and callers choose
the format (PNG, SVG, PDF) when they render them to bytes.

Kinds:
* ``threads`` -- one panel per op (small multiples: 24 lines in one axes and a 10-colour cycle are
  unreadable), GFLOP/s or speed-up against threads on a log2 axis, one line per size, IQR error
  bars, the ideal line only up to the usable cores and a vertical line at them;
* ``sizes``   -- one panel per op, GFLOP/s against size, one line per thread count, the crossover
  size (``blastune.advise.crossover``) marked;
* several sweep files -- the same panels, one colour per file (``labels`` or the file names), the
  line style telling sizes (or thread counts) apart;
* ``jobs``    -- tasks/s per layout as horizontal bars, the best highlighted, the naive default
  marked.

Hollow markers (and hollow bars) are points whose time others disturbed (contended, busy), that did
not settle (unstable) or that ran more threads than cores (oversubscribed): ``SweepPoint.doubtful``.
Legends sit outside the panels, below them, so they never cover data.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from blastune.errors import BlastuneError

KINDS = ("auto", "threads", "sizes", "jobs")
METRICS = ("gflops", "speedup")
FORMATS = ("png", "svg", "pdf")
PANEL_W, PANEL_H = 3.4, 2.6  # inches per small multiple
MAX_COLS = 4
DPI = 110  # the figure's own dpi: sizes of text and lines in points are independent of it
PNG_DPI = 150  # PNG pixels per inch by default: one panel is 900 px wide (was 660 at 110)
DPI_RANGE = (50, 600)
HEADROOM = 0.1  # above the highest point or error bar: a marker on the frame is cut in half
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
HOLLOW_NOTE = "hollow: contended, busy, unstable or oversubscribed"
WHISKERS = {"elinewidth": 0.9, "capsize": 2.5}  # error bars (IQR) and jobs' batch whiskers
USABLE = {"color": "0.45", "linestyle": "-."}  # the line at the usable cores and its legend entry


def check_available(option: str = "plot") -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise BlastuneError(
            f"{option} needs matplotlib, which is not installed: pip install 'blastune[plot]'"
        ) from None


def figure_format(path) -> str:
    """png, svg or pdf from the file name; anything else is one line naming what is allowed."""
    from pathlib import Path

    suffix = Path(str(path)).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise BlastuneError(f"cannot tell the figure format of {path}: name it .png, .svg or .pdf")
    return suffix


# --- the documents, as the figures need them ------------------------------------------------------


@dataclass
class Source:
    """One loaded document and the name it goes by in legends."""

    label: str
    doc: object  # SweepDocument or JobsResult
    kind: str  # "sweep" | "jobs"


def load_sources(paths, labels=None) -> list[Source]:
    """Load each file through its typed model; ``labels`` name them in legends (default: file
    stem)."""
    from pathlib import Path

    from blastune.documents.measured import load_measured

    labels = list(labels or [])
    if len(labels) > len(paths):
        raise BlastuneError(
            f"{len(labels)} --label given for {len(paths)} file(s): give at most one per file"
        )
    out = []
    for i, path in enumerate(paths):
        kind, doc = load_measured(path, "blastune plot")
        out.append(Source(labels[i] if i < len(labels) else Path(str(path)).stem, doc, kind))
    stems = [s.label for s in out]
    if len(set(stems)) < len(stems):  # two 'results.json' from different directories
        for s, path in zip(out, paths):
            if stems.count(s.label) > 1 and s.label == Path(str(path)).stem:
                s.label = str(path)
    return out


def _metric_value(p, metric: str, base) -> tuple[float | None, float | None, float | None]:
    """(value, low, high): the IQR of the times turned into the metric's units (work / time: the
    slower quartile gives the low end)."""
    work = (p.flops or 0) / 1e9 if metric == "gflops" else (base.median_s if base else 0)
    if not work:
        return None, None, None

    def per(seconds):
        return work / seconds if seconds else None

    return per(p.median_s), per(p.q3_s), per(p.q1_s)


def _blas_words(doc) -> str:
    blas = doc.blas() or {}
    if not blas:
        return f"{doc.grid.lib} (BLAS not identified)"
    inner = ", ".join(x for x in (blas.get("threading_layer"), blas.get("architecture")) if x)
    return f"{blas.get('vendor') or '?'} {blas.get('version') or ''}".strip() + (
        f" ({inner})" if inner else ""
    )


def _cpu_words(doc) -> str:
    cores = doc.cpu.usable_cores
    return f"{doc.cpu.model or 'unknown CPU'}" + (f", {cores} usable cores" if cores else "")


def machine_words(doc) -> str:
    """What a sweep measured where: 'numpy calls OpenBLAS 0.3.27 (pthreads, Haswell) on <CPU>'."""
    return f"{doc.grid.lib} calls {_blas_words(doc)} on {_cpu_words(doc)}"


def jobs_cpu_words(res) -> str:
    cpu = (res.fingerprint or {}).get("cpu_model") or "unknown CPU"
    return f"{cpu}, {res.usable_cores} usable cores"


def _panel_title(key) -> str:
    op, dtype, lib = key
    return " ".join(x for x in (op, dtype, f"({lib})" if lib else "") if x)


def choose_kind(sources: list[Source], kind: str = "auto") -> str:
    if kind not in KINDS:
        raise BlastuneError(f"invalid --kind {kind!r}: choose {', '.join(KINDS)}")
    kinds = {s.kind for s in sources}
    if len(kinds) > 1:
        raise BlastuneError("cannot draw sweep and jobs files in one figure: plot them separately")
    if "jobs" in kinds:
        if kind not in ("auto", "jobs"):
            raise BlastuneError(
                f"--kind {kind} is for sweep files; a jobs file is drawn as --kind jobs"
            )
        return "jobs"
    if kind == "jobs":
        raise BlastuneError(
            "--kind jobs is for jobs files; sweep files are drawn as threads or sizes"
        )
    threads = {p.threads for s in sources for p in s.doc.points}
    sizes = {p.size for s in sources for p in s.doc.points}
    if not threads:
        raise BlastuneError(f"{sources[0].label}: no measured points to draw")
    if kind == "auto":
        return "sizes" if len(sizes) > len(threads) else "threads"
    return kind


def make_figure(sources: list[Source], kind: str = "auto", metric: str = "gflops"):
    """The figure for these documents (see the module docstring); returns a matplotlib Figure."""
    check_available()
    if metric not in METRICS:
        raise BlastuneError(f"invalid --metric {metric!r}: choose gflops or speedup")
    if not sources:
        raise BlastuneError("no results file given")
    kind = choose_kind(sources, kind)
    if kind == "jobs":
        return jobs_figure(sources)
    return sweep_figure(sources, x=("threads" if kind == "threads" else "size"), metric=metric)


# --- sweep figures --------------------------------------------------------------------------------


def _new_figure(npanels: int, sharey: bool):
    from matplotlib.figure import Figure

    ncols = min(MAX_COLS, npanels)
    nrows = math.ceil(npanels / ncols)
    fig = Figure(
        figsize=(max(6.0, PANEL_W * ncols), PANEL_H * nrows + 1.1),  # _make_room sets the height
        dpi=DPI,
        layout="constrained",
    )
    axes = fig.subplots(nrows, ncols, sharey=sharey, squeeze=False).ravel()
    for ax in axes[npanels:]:
        ax.set_visible(False)
    return fig, list(axes[:npanels]), ncols


def _set_log2_ticks(ax, values) -> None:
    from matplotlib.ticker import FixedLocator, NullLocator

    values = sorted(set(values))
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(values))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(v) for v in values])
    lo, hi = values[0], values[-1]
    pad = (hi / lo) ** 0.06 if hi > lo else 1.3
    ax.set_xlim(lo / pad, hi * pad)


def sweep_figure(sources: list[Source], x: str = "threads", metric: str = "gflops"):
    """Small multiples per op of one or several sweep documents; ``x``: "threads" or "size"."""
    from matplotlib.lines import Line2D

    several_files = len(sources) > 1
    all_points = [p for s in sources for p in s.doc.points]
    several_dtypes = len({p.dtype for p in all_points}) > 1
    several_libs = len({p.lib for p in all_points}) > 1
    series_of = (lambda p: p.size) if x == "threads" else (lambda p: p.threads)
    x_of = (lambda p: p.threads) if x == "threads" else (lambda p: p.size)
    series_all = sorted({series_of(p) for p in all_points})

    def panel_of(p) -> tuple:  # a point's or a crossover's panel: (op, dtype, lib) where they vary
        return (p.op, p.dtype if several_dtypes else "", p.lib if several_libs else "")

    # panels in the document's op order; ops with no FLOP count have no GFLOP/s
    keys, skipped = [], []
    for p in all_points:
        if metric == "gflops" and not p.flops:
            if p.op not in skipped:
                skipped.append(p.op)
        elif panel_of(p) not in keys:
            keys.append(panel_of(p))
    if not keys:
        raise BlastuneError(
            f"nothing to draw as GFLOP/s (no FLOP count for {', '.join(skipped)}): "
            "use --metric speedup"
        )
    # speed-ups share one scale; GFLOP/s of dot and svd differ tenfold, so each panel has its own
    fig, axes, ncols = _new_figure(len(keys), sharey=(metric == "speedup"))
    colours = _colours(
        len(sources) if several_files else len(series_all), sequential=not several_files
    )

    def look(si: int, ri: int) -> tuple:
        """(colour, line style, marker) of file si's series ri: files told apart by colour, and
        then sizes (thread counts) by style; one file's series by colour."""
        if several_files:
            return colours[si], LINESTYLES[ri % len(LINESTYLES)], MARKERS[ri % len(MARKERS)]
        return colours[ri], "-", "o"

    usable = next((s.doc.cpu.usable_cores for s in sources if s.doc.cpu.usable_cores), None)
    any_hollow = drew_ideal = False
    crossings = {}
    if x == "size":
        from blastune.advise.crossover import crossover_sizes

        for si, s in enumerate(sources):
            for c in crossover_sizes(s.doc):
                crossings.setdefault(panel_of(c), []).append((si, c))
    for ax, key in zip(axes, keys):
        xs_seen = []
        for si, s in enumerate(sources):
            pts = [p for p in s.doc.points if panel_of(p) == key]
            for ri, ser in enumerate(series_all):
                line = sorted((p for p in pts if series_of(p) == ser), key=x_of)
                if not line:
                    continue
                colour, style, marker = look(si, ri)
                xs, ys, los, his, hollow = [], [], [], [], []
                for p in line:
                    v, lo, hi = _metric_value(p, metric, _base_point(s.doc, p))
                    if v is None:
                        continue
                    xs.append(x_of(p))
                    ys.append(v)
                    los.append(v - lo if lo is not None else 0.0)
                    his.append(hi - v if hi is not None else 0.0)
                    hollow.append(p.doubtful)  # disturbed, unstable, oversubscribed
                if not xs:
                    continue
                xs_seen += xs
                bars = ax.errorbar(
                    xs,
                    ys,
                    yerr=[los, his],
                    color=colour,
                    linestyle=style,
                    linewidth=1.4,
                    **WHISKERS,
                    marker="none",
                    zorder=2,
                )
                bars.lines[0].set_label(f"_data:{s.label}:{ser}")  # "_": no legend entry; tests
                for xv, yv, h in zip(xs, ys, hollow):
                    any_hollow |= h
                    ax.plot(
                        [xv],
                        [yv],
                        marker=marker,
                        markersize=6,
                        linestyle="none",
                        zorder=3,
                        markeredgecolor=colour,
                        markerfacecolor="white" if h else colour,
                        markeredgewidth=1.3,
                        label="_hollow" if h else "_point",
                    )
                # no ideal for ops BLAS does not run; overlaid files get theirs thin and faint
                if x == "threads" and usable and line[0].blas_op:
                    ideal_colour = colour if metric == "gflops" else "0.35"
                    drew_ideal |= _ideal(ax, xs, ys, usable, ideal_colour, faint=several_files)
        _set_log2_ticks(ax, xs_seen + ([usable] if x == "threads" and usable else []))
        if x == "threads" and usable:
            ax.axvline(usable, **USABLE, linewidth=1.0, zorder=1, label="_usable")
        said = []
        for si, c in crossings.get(key, []):
            colour = colours[si] if several_files else CROSSOVER
            if c.size is not None:
                ax.axvline(
                    c.size,
                    color=colour,
                    linewidth=1.2,
                    linestyle="--",
                    zorder=1,
                    label="_crossover",
                )
            # in the title, not in the axes: a note inside could sit on a point
            below = "≤" if c.status == "below" else ""
            word = "never" if c.size is None else f"{below}{c.size}"
            said.append((sources[si].label + " " if several_files else "") + word)
        blas_op = any(p.blas_op for p in all_points if panel_of(p) == key)
        title = _panel_title(key) + ("" if blas_op else " (not BLAS)")
        if said:  # wrapped: long labels ran into the next panel
            title += "\n" + _fit_words("crossover n: " + ", ".join(said), PANEL_W, 9)
        ax.set_title(title, fontsize=10 if "\n" not in title else 9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.25, linewidth=0.6)
        if metric == "gflops":
            ax.set_ylim(bottom=0)
    _headroom(axes, shared=(metric == "speedup"), from_zero=(metric == "gflops"))
    ylabel = "GFLOP/s (median; bars: IQR)" if metric == "gflops" else "speed-up over fewest threads"
    xlabel = "threads (log2)" if x == "threads" else "matrix size n (log2)"
    for i, ax in enumerate(axes):
        if i % ncols == 0:
            ax.set_ylabel(ylabel, fontsize=9)
        if i >= len(axes) - ncols:
            ax.set_xlabel(xlabel, fontsize=9)
    title = _fit_words(_sweep_title(sources, x, metric), fig.get_figwidth(), 11)
    fig.suptitle(title, fontsize=11)

    # one legend for the figure, below the panels
    def entry(label: str, colour="0.3", **style):
        return Line2D([], [], color=colour, label=label, **style)

    def name(v) -> str:
        return f"n={v}" if x == "threads" else f"{v} thread" + ("s" if v != 1 else "")

    handles = []
    if several_files:
        handles += [
            entry(f"{s.label}: {_blas_words(s.doc)}", colours[si], linewidth=2.5)
            for si, s in enumerate(sources)
        ]
    for ri, ser in enumerate(series_all):
        colour, style, marker = look(0, ri)
        handles.append(
            entry(name(ser), "0.3" if several_files else colour, linestyle=style, marker=marker)
        )
    if drew_ideal:
        handles.append(entry(f"ideal (linear up to {usable} cores)", "0.35", linestyle=IDEAL_STYLE))
    if x == "threads" and usable:
        handles.append(Line2D([], [], **USABLE, label=f"usable cores ({usable})"))
    if crossings:
        colour = "0.3" if several_files else CROSSOVER
        handles.append(
            entry("crossover: from this size on, more threads pay", colour, linestyle="--")
        )
    if any_hollow:
        handles.append(entry(HOLLOW_NOTE, marker="o", markerfacecolor="white", linestyle="none"))
    if skipped:  # a legend entry, so the layout engine places it where it covers nothing
        what = "not drawn (no FLOP count; --metric speedup draws them): " + ", ".join(skipped)
        handles.append(entry(what, None, linestyle="none"))
    ncols_legend = _legend(fig, handles)
    _make_room(fig, math.ceil(len(axes) / ncols), title, math.ceil(len(handles) / ncols_legend))
    return fig


def _make_room(fig, panel_rows: int, title: str, legend_rows: int) -> None:
    """Height for the panels plus the title's and the legend's lines: with 20 files the legend alone
    is taller than the old fixed allowance, the layout engine gave up ('axes sizes collapsed to
    zero', a UserWarning) and drew the legend over the panels."""
    extra = 0.45 + 0.24 * (title.count("\n") + 1) + 0.19 * legend_rows
    fig.set_size_inches(fig.get_figwidth(), PANEL_H * panel_rows + extra)


def _headroom(axes, shared: bool, from_zero: bool) -> None:
    """The y-limits a little above the highest drawn value (points, error bars, ideal lines)."""
    import numpy as np

    def top_of(ax):
        ys = [
            np.nanmax(np.asarray(line.get_ydata(), dtype=float))
            for line in ax.get_lines()
            if len(line.get_ydata())
        ]
        ys += [
            seg[:, 1].max()
            for coll in ax.collections
            for seg in getattr(coll, "get_segments", list)()
            if len(seg)
        ]
        return max(ys) if ys else None

    tops = {id(ax): top_of(ax) for ax in axes}
    if shared and axes:
        every = [t for t in tops.values() if t is not None]
        tops = {id(ax): max(every) if every else None for ax in axes}
    for ax in axes:
        top = tops[id(ax)]
        if top is None or not math.isfinite(top):
            continue
        bottom = 0.0 if from_zero else ax.get_ylim()[0]
        ax.set_ylim(bottom, top + HEADROOM * (top - bottom if top > bottom else abs(top) or 1.0))


CROSSOVER = "#c0392b"
_CHAR_EM = 0.6  # a character of DejaVu Sans is about 0.6 em wide on average (a safe overestimate)


def _fit_words(text: str, inches: float, fontsize: float) -> str:
    """Wrap a title to a width: a long BLAS and CPU name must not run off the image."""
    import textwrap

    chars = int(inches * 72 / (fontsize * _CHAR_EM))
    return "\n".join(textwrap.wrap(text, max(20, chars), break_on_hyphens=False))


def _legend(fig, handles, fontsize: float = 8) -> int:
    """One legend for the figure, below the panels, in as many columns as fit the figure's width
    (so it wraps instead of running off); returns its number of columns."""
    width = fig.get_figwidth() * 72 * 0.96
    # an entry's width: its text and its handle
    entries = [len(h.get_label()) * fontsize * _CHAR_EM + 3.2 * fontsize for h in handles]
    ncols = 1
    for n in range(len(entries), 0, -1):
        cols = [max(entries[i::n]) for i in range(n)]  # the widest entry sets a column's width
        if sum(cols) + 2 * fontsize * (n - 1) <= width:
            ncols = n
            break
    fig.legend(
        handles=handles, loc="outside lower center", ncols=ncols, fontsize=fontsize, frameon=False
    )
    return ncols


def _base_point(doc, p):
    """The fewest-threads point of p's (op, lib, size, dtype): the speed-up's 1."""
    pts = [
        q for q in doc.points if (q.op, q.lib, q.size, q.dtype) == (p.op, p.lib, p.size, p.dtype)
    ]
    return min(pts, key=lambda q: q.threads) if pts else None


IDEAL_STYLE = (0, (1, 1.5))


def _ideal(ax, xs, ys, usable, colour, faint: bool = False) -> bool:
    """Linear scaling from the fewest threads, drawn only up to the usable cores (beyond them
    threads share cores and nothing is ideal). Overlaid files draw one per file and size: thin and
    faint, so they read as a guide, not as data. True when a line was drawn."""
    x0, y0 = xs[0], ys[0]
    if x0 >= usable:
        return False
    ax.plot(
        [x0, usable],
        [y0, y0 * usable / x0],
        color=colour,
        linestyle=IDEAL_STYLE,
        linewidth=0.8 if faint else 1.0,
        alpha=0.5 if faint else 0.8,
        zorder=1,
        label="_ideal",
    )
    return True


def _colours(n: int, sequential: bool):
    """Distinguishable colours: an ordered palette for sizes/threads (bigger = darker), a
    qualitative one for files."""
    from matplotlib import colormaps

    if sequential:
        cmap = colormaps["viridis"]
        if n == 1:
            return [cmap(0.35)]
        return [cmap(0.85 - 0.75 * i / (n - 1)) for i in range(n)]
    qual = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
    if n <= len(qual):
        return qual[:n]
    cmap = colormaps["tab20" if n <= 20 else "turbo"]  # more files than 8: no colour twice
    return [cmap(i / 19 if n <= 20 else i / (n - 1)) for i in range(n)]


def _sweep_title(sources, x, metric) -> str:
    what = "GFLOP/s" if metric == "gflops" else "speed-up"
    against = "threads" if x == "threads" else "matrix size"
    if len(sources) == 1:
        return f"{what} against {against}: {machine_words(sources[0].doc)}"
    cpus = {_cpu_words(s.doc) for s in sources}
    where = f" on {cpus.pop()}" if len(cpus) == 1 else ""
    names = " vs ".join(s.label for s in sources) if len(sources) <= 4 else f"{len(sources)} files"
    return f"{what} against {against}: " + names + where


# --- jobs figure ----------------------------------------------------------------------------------


def jobs_figure(sources: list[Source]):
    """Tasks/s per layout, one panel per jobs file, the best bar highlighted, the naive default
    hatched, contended or unstable layouts hollow; whiskers span the slowest and fastest batch."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from blastune.present.jobs import jobs_rate

    heights = [max(1.6, 0.42 * len(s.doc.results) + 0.9) for s in sources]
    fig = Figure(figsize=(9.0, sum(heights) + 1.0), dpi=DPI, layout="constrained")
    axes = fig.subplots(
        len(sources), 1, squeeze=False, gridspec_kw={"height_ratios": heights}
    ).ravel()
    any_hollow = any_naive = False
    for ax, s in zip(axes, sources):
        res = s.doc
        results = list(res.results)
        best = res.best
        rates = [r.tasks_per_s for r in results]
        lo, hi = [], []
        for r in results:
            n = r.tasks or res.tasks  # a layout given more tasks (a short batch) counts its own
            fast = n / min(r.walls) if r.walls and min(r.walls) > 0 else r.tasks_per_s
            slow = n / max(r.walls) if r.walls and max(r.walls) > 0 else r.tasks_per_s
            lo.append(max(0.0, r.tasks_per_s - slow))
            hi.append(max(0.0, fast - r.tasks_per_s))
        ys = list(range(len(results)))[::-1]  # the baseline (serial) on top
        for y, r, rate in zip(ys, results, rates):
            naive = r.layout.threads is None
            colour = BEST if r is best else (NAIVE if naive else OTHER)
            hollow = bool(r.contended or r.unstable)
            any_hollow |= hollow
            any_naive |= naive
            ax.barh(
                y,
                rate,
                height=0.62,
                color="white" if hollow else colour,
                edgecolor=EDGE[colour],
                linewidth=1.4,
                hatch="///" if naive else None,
                zorder=2,
            )
        ax.errorbar(
            rates,
            ys,
            xerr=[lo, hi],
            fmt="none",
            ecolor="0.25",
            **WHISKERS,
            zorder=3,
        )
        top = max(r + h for r, h in zip(rates, hi)) if rates else 1
        for y, r, rate, h in zip(ys, results, rates, hi):
            speed = f"  {jobs_rate(rate)}/s"
            speed += f"  {r.speedup:.2f}x" if r.speedup is not None else ""
            speed += "  best" if r is best else ""
            speed += "  oversubscribed" if _oversubscribed(r, res.usable_cores) else ""
            ax.text(
                rate + h,
                y,
                speed,
                va="center",
                ha="left",
                fontsize=8,
                fontweight="bold" if r is best else "normal",
            )
        ax.set_xlim(0, top * 1.32)  # room for the numbers at the bars' ends
        ax.set_yticks(ys)
        ax.set_yticklabels([_layout_label(r) for r in results], fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.25, linewidth=0.6)
        ax.set_axisbelow(True)
        libs = ", ".join((res.fingerprint or {}).get("libraries") or [])
        head = f"{s.label}: " if len(sources) > 1 else ""
        ax.set_title(
            f"{head}{res.tasks:,} tasks of {res.workload.describe()}\n"
            f"{libs + ' on ' if libs else ''}{jobs_cpu_words(res)}",
            fontsize=9,
        )
    axes[-1].set_xlabel(
        f"tasks per second (median of {sources[0].doc.repeats} batch(es); whiskers: "
        "slowest to fastest batch)",
        fontsize=9,
    )
    fig.suptitle(
        _fit_words(
            "blastune jobs: throughput per layout (serial baseline on top)", fig.get_figwidth(), 11
        ),
        fontsize=11,
    )

    def entry(label: str, colour: str, edge: str | None = None, **style):
        return Patch(facecolor=colour, edgecolor=EDGE[edge or colour], label=label, **style)

    handles = [entry("best layout", BEST), entry("other layouts", OTHER)]
    if any_naive:
        handles.append(entry("naive: the library's default threads", NAIVE, hatch="///"))
    if any_hollow:
        handles.append(entry("hollow: contended or unstable", "white", OTHER))
    _legend(fig, handles)
    return fig


BEST, OTHER, NAIVE = "#2ca02c", "#4c72b0", "#a6bddb"
EDGE = {BEST: "#1b6e1b", OTHER: "#2f4b7c", NAIVE: "#2f4b7c"}


def _oversubscribed(r, cores: int) -> bool:
    return bool(
        r.self_oversubscribed or (r.threads_seen and r.layout.workers * r.threads_seen > cores)
    )


def _layout_label(r) -> str:
    """'2 processes × 1 BLAS thread', 'serial × default BLAS threads (2)': the layout's label (its
    head has no ' x ') with the count the default came to."""
    seen = f" ({r.threads_seen})" if r.layout.threads is None and r.threads_seen else ""
    return r.layout.label.replace(" x ", " × ", 1) + seen


# --- output ---------------------------------------------------------------------------------------


def check_dpi(dpi) -> int:
    low, high = DPI_RANGE
    if dpi is None:
        return PNG_DPI
    if not isinstance(dpi, int) or not low <= dpi <= high:
        raise BlastuneError(f"invalid --dpi {dpi}: must be a whole number from {low} to {high}")
    return dpi


def render(fig, fmt: str = "png", dpi: int | None = None) -> bytes:
    """The figure as bytes (PNG, SVG or PDF); SVG keeps text as text, without a timestamp. ``dpi``
    sets a PNG's pixels per inch (default PNG_DPI); SVG and PDF are vectors."""
    buf = io.BytesIO()
    meta = {"Date": None} if fmt == "svg" else ({"CreationDate": None} if fmt == "pdf" else {})
    fig.savefig(buf, format=fmt, dpi=check_dpi(dpi) if fmt == "png" else DPI, metadata=meta)
    return buf.getvalue()


def svg_text(fig) -> str:
    """Inline SVG for an HTML page: the XML prolog and doctype stripped. Text stays drawn as paths
    (matplotlib's default): the page then looks the same where DejaVu Sans is not installed."""
    text = render(fig, "svg").decode()
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def save_figure(
    fig, path, force: bool = False, what: str = "figure", dpi: int | None = None
) -> None:
    """Write the figure by the output rule: refused without ``force``, atomic, mode and links kept,
    never replacing a FIFO or device (it is written into)."""
    from blastune.core.files import check_output, write_output

    fmt = figure_format(path)
    check_output(path, force=force, what=what)
    write_output(path, render(fig, fmt, dpi), what=what)
