"""The HTML report: one self-contained page -- what a user attaches to a bug report or sends to a
cluster admin.

Everything is inline: CSS in a <style> element, figures as SVG elements (text drawn as paths, so the
page looks the same without any font installed), no script, no link, no image fetched from anywhere.
Each SVG's ids get a prefix of their own: matplotlib numbers ids per figure, and two figures in one
page would otherwise point at each other's clip paths and markers.
"""

from __future__ import annotations

import datetime as _dt
import html
import re
from dataclasses import dataclass, field

from blastune.present.jobs import JOBS_HEADERS, JOBS_LEGEND, fastest_line, jobs_rows
from blastune.present.plot import (
    Source,
    choose_kind,
    jobs_cpu_words,
    machine_words,
    make_figure,
    svg_text,
)
from blastune.present.rows import in_unit, time_unit
from blastune.present.sweep_rows import (
    efficiency_cell,
    gflops_cell,
    notes_cell,
    point_table,
    speedup_cell,
    spread_cell,
    threads_cell,
)

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:#1d2329;margin:0;background:#fff}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:34px 0 8px;padding-bottom:4px;
 border-bottom:2px solid #e3e7eb}h3{font-size:15px;margin:20px 0 6px}
.meta{color:#5b6670;margin:0 0 14px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #dde2e6;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f6;font-weight:600;white-space:nowrap}tr:nth-child(even) td{background:#fafbfc}
td:first-child{white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.path{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.sev{font-weight:700;white-space:nowrap}.ok{color:#2e7d32}.info{color:#1565c0}
.warning{color:#b26a00}.error{color:#c62828}
.note{color:#5b6670;font-size:13px;margin:2px 0}
.warn{background:#fff6e0;border-left:4px solid #f0a500;padding:6px 10px;margin:6px 0;font-size:13px}
figure{margin:10px 0 16px}figure svg{max-width:100%;height:auto}
figcaption{color:#5b6670;font-size:13px}
footer{margin-top:40px;color:#8a949c;font-size:12px}
"""


@dataclass
class Section:
    title: str
    html: str
    figures: int = 0
    tables: int = 0


@dataclass
class Report:
    """The page and what it holds (the CLI prints the latter with --json)."""

    html: str
    sections: list[Section] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "sections": [
                {"title": s.title, "figures": s.figures, "tables": s.tables} for s in self.sections
            ],
            "bytes": len(self.html.encode()),
        }


def esc(x) -> str:
    return html.escape("" if x is None else str(x))


def html_table(headers, rows, classes=None) -> str:
    """A plain HTML table; ``classes``: a CSS class per column (num, path) or None."""

    def cell(i, v):
        c = classes[i] if classes else None
        return f'<td class="{c}">{esc(v)}</td>' if c else f"<td>{esc(v)}</td>"

    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return _table(headers, body)


def _table(headers, body: str) -> str:
    """A table around rows already in HTML."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    head = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""  # none in a key/value table
    return f"<table>{head}<tbody>{body}</tbody></table>"


_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(href="#|url\(#)([^")]+)')


def inline_svg(fig, prefix: str) -> str:
    """The figure as an <svg> element with ids unique to ``prefix`` and no metadata block."""
    text = svg_text(fig)
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    text = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = _REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", text)
    return text


def _notes(lines, prefix: str = "") -> list[str]:
    return [f'<p class="note">{esc(prefix)}{esc(n)}</p>' for n in lines]


def _warnings(lines) -> list[str]:
    return [f'<div class="warn">warning: {esc(w)}</div>' for w in lines]


# --- sections -------------------------------------------------------------------------------------


def info_section(info) -> Section:
    from blastune.present.info import info_tables, packages_line

    parts = [f'<p class="meta">{esc(packages_line(info))}; {esc(info.platform)}</p>']
    for title, headers, rows, said in info_tables(info):
        classes = [{"threads": "num", "file": "path"}.get(h) for h in headers]
        table = html_table(headers, rows, classes) if rows else "<p>(none found)</p>"
        parts += [f"<h3>{esc(title)}</h3>", table, *_notes(said)]
    parts += _warnings(info.warnings)
    return Section("This machine (blastune info)", "\n".join(parts), 0, 4)


def doctor_section(report) -> Section:
    from blastune.present.doctor import HEADERS, finding_row, summary_line

    rows = "".join(
        f'<tr><td class="sev {esc(f.severity)}">{esc(mark)}</td><td>{esc(check)}</td>'
        f"<td>{esc(finding)}"
        + (f'<br><span class="note">fix: {esc(fix)}</span>' if fix else "")
        + "</td></tr>"
        for f in report.worst_first()
        for mark, check, finding, fix in [finding_row(f)]
    )
    meta = f'<p class="meta">{esc(summary_line(report))}</p>'
    notes = "".join(_notes(report.notes, "note: "))
    return Section("Findings (blastune doctor)", meta + _table(HEADERS, rows) + notes, 0, 1)


def _sweep_table(doc) -> str:
    """The points, cell by cell as `blastune sweep` prints them (``present.sweep_rows``); the
    times in one unit per column: '1.2 ms' above '830 us' made the reader convert."""
    m_unit, m_scale = time_unit(p.median_s for p in doc.points)
    i_unit, i_scale = time_unit(p.iqr_s for p in doc.points)
    columns = [  # (header, CSS class, cell of a point)
        ("op", None, lambda p: p.op),
        ("lib", None, lambda p: p.lib),
        ("n", "num", lambda p: p.size),
        ("dtype", None, lambda p: p.dtype),
        ("threads", "num", threads_cell),
        (f"median ({m_unit})", "num", lambda p: in_unit(p.median_s, m_scale)),
        (f"IQR ({i_unit})", "num", lambda p: in_unit(p.iqr_s, i_scale)),
        ("spread", "num", spread_cell),
        ("GFLOP/s", "num", gflops_cell),
        ("speed-up", "num", speedup_cell),
        ("efficiency", "num", efficiency_cell),
        ("notes", None, notes_cell),
    ]
    headers, rows = point_table(doc, columns)
    classes = [c for h, c, _ in columns if h in headers]
    legend = ["* best thread count: the fewest threads within noise of the fastest."]
    if any(p.flops_nominal for p in doc.points if p.gflops is not None):
        legend.append("~: nominal FLOP count (the work of svd, eigh, qr depends on the input).")
    if any(p.flags for p in doc.points):
        legend.append("!: beyond a physical bound, not a fact (see notes).")
    return html_table(headers, rows, classes) + _notes([" ".join(legend)])[0]


def _crossover_table(doc) -> str:
    from blastune.advise.crossover import crossover_sizes

    cs = crossover_sizes(doc)
    if not cs:
        return ""
    rows = [
        [
            c.op,
            c.dtype,
            c.describe(),
            ", ".join(f"{s}: {t}" for s, t in c.best_threads.items()),
            c.caveat() or "",
        ]
        for c in cs
    ]
    return "<h3>Crossover: from which size more threads pay off</h3>" + html_table(
        ["op", "dtype", "more threads pay from", "best threads per size", "caveat"], rows
    )


def _jobs_table(res) -> str:
    """The table ``blastune jobs`` prints (present.jobs): the same rows, marks and notes."""
    rows, notes = jobs_rows(res)
    classes = [None] + ["num"] * (len(JOBS_HEADERS) - 1)
    return html_table(JOBS_HEADERS, rows, classes) + "".join(_notes([*notes, JOBS_LEGEND]))


def _figure(sources, kind, prefix, caption) -> str:
    fig = make_figure(sources, kind)
    svg = inline_svg(fig, prefix)
    fig.clear()
    return f"<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>"


def source_section(src: Source, n: int) -> Section:
    doc = src.doc
    if src.kind == "sweep":
        kind = choose_kind([src])
        parts = [
            f'<p class="meta">{esc(machine_words(doc))}; measured {esc(doc.created or "?")}, '
            f"status {esc(doc.status)}</p>",
            _figure(
                [src],
                kind,
                f"f{n}a",
                "GFLOP/s per op (ops without a FLOP count are in the table only).",
            ),
        ]
        if kind == "threads" and len({p.size for p in doc.points}) > 1:  # shows the crossover
            parts.append(
                _figure(
                    [src],
                    "sizes",
                    f"f{n}b",
                    "The same points against matrix size; dashed: the crossover size.",
                )
            )
        parts += [_crossover_table(doc), "<h3>Points</h3>" + _sweep_table(doc)]
        tables = 2
    else:
        from blastune.measure.jobs.analysis import rejudge

        rejudge(doc)  # today's contention rule on its raw batch figures (figure and table alike)
        parts = [
            f'<p class="meta">{doc.tasks:,} tasks of {esc(doc.workload.describe())}; {doc.repeats} '
            f"batch(es) per layout; {esc(jobs_cpu_words(doc))}; measured "
            f"{esc(doc.created or '?')}</p>",
            _figure(
                [src],
                "jobs",
                f"f{n}a",
                "Tasks per second per layout; whiskers span the slowest and the fastest batch.",
            ),
            f"<p>{esc(fastest_line(doc))}</p>",
            _jobs_table(doc),
        ]
        tables = 1
    parts += _warnings(doc.warnings)
    figures = sum(part.startswith("<figure>") for part in parts)
    return Section(f"{src.label} ({src.kind})", "\n".join(parts), figures, tables)


def comparable(sweeps: list[Source]) -> tuple[list[Source], list[str], list[str]]:
    """The sweep files worth overlaying, each cut to the ops (with a FLOP count) another file has
    too; the files left out and the ops left out. Overlaying files that share no op draws each file
    in panels of its own, which compares nothing."""
    from collections import Counter
    from dataclasses import replace

    def ops(s):
        return {p.op for p in s.doc.points if p.flops}

    counts = Counter(op for s in sweeps for op in ops(s))
    common = {op for op, n in counts.items() if n > 1}
    kept, left_files = [], []
    for s in sweeps:
        if ops(s) & common:
            doc = replace(s.doc, points=[p for p in s.doc.points if p.op in common])
            kept.append(Source(s.label, doc, s.kind))
        else:
            left_files.append(s.label)
    left_ops = sorted(op for op, n in counts.items() if n == 1)
    return (kept if len(kept) > 1 else []), left_files, left_ops


def compare_section(sweeps: list[Source]) -> Section | None:
    if len(sweeps) < 2:
        return None
    kept, left_files, left_ops = comparable(sweeps)
    said = []
    if left_files:
        said.append("left out, no op in common with another file: " + ", ".join(left_files))
    if left_ops:
        said.append("ops measured in one file only, not drawn: " + ", ".join(left_ops))
    notes = "".join(_notes(said))
    if not kept:
        nothing = "<p>Nothing to overlay: no two sweep files measured the same op.</p>"
        return Section("Sweep files compared", nothing + notes, 0, 0)
    fig = _figure(
        kept, "auto", "cmp", "The sweep files overlaid on the ops they share: one colour per file."
    )
    return Section("Sweep files compared", fig + notes, 1, 0)


def build_report(info=None, doctor=None, sources: list[Source] = (), command: str = "") -> Report:
    """The whole page. ``info``/``doctor``: this machine's facts and findings (None: left out)."""
    from blastune import __version__

    sections = []
    if info is not None:
        sections.append(info_section(info))
    if doctor is not None:
        sections.append(doctor_section(doctor))
    sweeps = [s for s in sources if s.kind == "sweep"]
    for i, src in enumerate(sources):
        sections.append(source_section(src, i))
    compared = compare_section(sweeps)
    if compared is not None:
        sections.append(compared)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    nav = "".join(f'<li><a href="#s{i}">{esc(s.title)}</a></li>' for i, s in enumerate(sections))
    body = "".join(
        f'<section id="s{i}"><h2>{esc(s.title)}</h2>{s.html}</section>'
        for i, s in enumerate(sections)
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>blastune report {esc(now)}</title><style>{CSS}</style></head><body><main>"
        f'<h1>blastune report</h1><p class="meta">made {esc(now)} by blastune {esc(__version__)}'
        + (f" with <code>{esc(command)}</code>" if command else "")
        + ". The first two sections describe the machine the report was made on; each results file "
        "describes the machine it was measured on.</p>"
        f"<ul>{nav}</ul>{body}<footer>blastune {esc(__version__)} -- self-contained page: "
        "no script, no external resource.</footer></main></body></html>\n"
    )
    return Report(page, sections)
