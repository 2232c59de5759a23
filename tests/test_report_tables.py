"""The report's tables read like the terminal's: one time unit per column, svd's '~', a wait column
for jobs, headers that do not wrap, 'at run time', and an overlay only of files that share an op."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from blastune.documents.jobs import JobsResult  # noqa: E402
from blastune.documents.sweep import SweepDocument  # noqa: E402
from blastune.present.plot import Source, load_sources  # noqa: E402
from blastune.present.report import (
    CSS,
    _jobs_table,
    _sweep_table,
    compare_section,  # noqa: E402
    info_section,
)

DATA = Path(__file__).parent / "data" / "docs_0_1_0"


class Table(HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.headers, self.rows, self._cell, self._in = [], [], None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        if tag in ("th", "td"):
            self._in, self._cell = tag, ""

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._in:
            (self.headers if self._in == "th" else self.rows[-1]).append(self._cell.strip())
            self._in = None

    def handle_data(self, data):
        if self._in:
            self._cell += data

    def column(self, name):
        i = self.headers.index(name)
        return [r[i] for r in self.rows if r]


def test_sweep_table_one_time_unit_per_column_and_the_nominal_mark():
    (src,) = load_sources([DATA / "sweep_before_openblas.json"])
    t = Table(_sweep_table(src.doc))
    median = next(h for h in t.headers if h.startswith("median"))
    iqr = next(h for h in t.headers if h.startswith("IQR"))
    assert re.fullmatch(r"median \((s|ms|us|ns)\)", median)
    assert re.fullmatch(r"IQR \((s|ms|us|ns)\)", iqr)
    for name in (median, iqr):  # numbers only: the unit is in the header, once
        assert all(re.fullmatch(r"[0-9.e+-]+", c) for c in t.column(name)), t.column(name)
    ops, gflops = t.column("op"), t.column("GFLOP/s")
    assert all(g.startswith("~") for o, g in zip(ops, gflops) if o == "svd")  # nominal FLOP count
    assert not any(g.startswith("~") for o, g in zip(ops, gflops) if o == "dot")
    assert "~: nominal FLOP count" in _sweep_table(src.doc)


def test_jobs_table_has_the_wait_column_the_terminal_has():
    data = json.loads((DATA / "jobs.json").read_text())
    src = Source("jobs", JobsResult.from_dict(data), "jobs")
    r = src.doc.results[1]
    r.wait_pct, r.contended = 40.0, True
    t = Table(_jobs_table(src.doc))
    assert "wait" in t.headers and t.column("wait")[1] == "40% C"
    assert "wall s" in t.headers and "run-queue wait" in _jobs_table(src.doc)


def test_jobs_table_is_the_terminals_table():
    """The report shows the rows, marks and notes `blastune jobs` prints: one row builder."""
    from blastune.present.jobs import JOBS_HEADERS, render_jobs

    data = json.loads((DATA / "jobs.json").read_text())
    doc = JobsResult.from_dict(data)
    doc.results[1].beyond_bounds["speedup"] = "above the 2 workers x 1 thread it used"
    html, text = _jobs_table(doc), render_jobs(doc, wide=True)
    t = Table(html)
    rows = [r for r in t.rows if r]
    assert t.headers == JOBS_HEADERS and len(rows) == len(doc.results)
    lines = text.splitlines()
    for row in rows:  # each report row is a line of the terminal's table, cell for cell
        assert any(all(c in line for c in row) for line in lines), row
    assert rows[1][0].endswith("[1]") and rows[1][JOBS_HEADERS.index("speed-up")].endswith("x!")
    note = next(line for line in lines if line.startswith("[1] "))
    assert note in html and "above the 2 workers x 1 thread it used" in note


def test_headers_do_not_wrap():
    th = re.search(r"th\{[^}]*\}", CSS).group(0)
    assert "white-space:nowrap" in th


def test_info_says_at_run_time_as_the_cli_does():
    from blastune.facts.info import info

    facts = info()
    html = info_section(facts).html
    if any(lib.control == "runtime" for lib in facts.loaded):
        assert "<td>at run time</td>" in html
    assert "<td>runtime</td>" not in html


def test_both_library_tables_set_file_paths_as_paths():
    # the bindings table took its CSS classes from the other table's, shifted by one column: its
    # file cells lost the 'path' class (monospace, broken anywhere) that the loaded table has
    from blastune.facts.info import info

    facts = info()
    tables = re.findall(r"<table>.*?</table>", info_section(facts).html, flags=re.S)[:2]
    for table, files in zip(tables, (facts.bindings, facts.loaded)):
        paths = re.findall(r'<td class="path">([^<]*)</td>', table)
        assert paths and len(paths) == len(files)


def test_info_and_doctor_sections_show_the_terminals_rows():
    # one row builder each (present/info.py, present/doctor.py): the page and `blastune info` /
    # `blastune doctor` cannot drift apart again (the page had lost the kernel column)
    from blastune.advise.doctor.report import doctor
    from blastune.facts.info import info
    from blastune.present import doctor as doctor_rows, info as info_rows
    from blastune.present.report import doctor_section

    facts = info()
    html = info_section(facts).html
    tables = re.findall(r"<table>.*?</table>", html, flags=re.S)
    calls, loaded = Table(tables[0]), Table(tables[1])
    assert calls.headers == info_rows.BINDING_HEADERS and "kernel" in calls.headers
    assert [r for r in calls.rows if r] == [
        [str(c) for c in row] for row in info_rows.binding_rows(facts)
    ]
    assert loaded.headers == info_rows.LIBRARY_HEADERS
    assert [r for r in loaded.rows if r] == [
        [str(c) for c in row] for row in info_rows.library_rows(facts)
    ]
    report = doctor(jobs=2, probe=False)
    t = Table(doctor_section(report).html)
    assert t.headers == doctor_rows.HEADERS
    marks = [doctor_rows.MARK[f.severity] for f in report.worst_first()]
    assert [r[0] for r in t.rows if r] == marks
    assert doctor_rows.summary_line(report) in doctor_section(report).html


def test_compared_files_share_an_op_and_the_others_are_named():
    before, after = load_sources(
        [DATA / "sweep_before_openblas.json", DATA / "sweep_after_blis.json"]
    )
    data = json.loads((DATA / "sweep_threads.json").read_text())
    data["points"] = [p for p in data["points"] if p["op"] == "eigh"]
    eigh = Source("eigh-only", SweepDocument.from_dict(data), "sweep")
    section = compare_section([before, after, eigh])
    assert section.figures == 1
    assert "left out, no op in common with another file: eigh-only" in section.html
    alone = compare_section([before, eigh])
    assert alone.figures == 0 and "no two sweep files measured the same op" in alone.html


def test_sweep_cells_read_as_the_terminal_prints_them():
    """The report built its own notes ('busy worker', '16 *') and showed an efficiency above 100%
    without its '!': the cells now come from present.sweep_rows, as `blastune sweep` prints them."""
    from blastune.present.sweep_rows import sweep_rows

    (src,) = load_sources([DATA / "sweep_after_blis.json"])
    doc = src.doc
    assert any(p.disturbed for p in doc.points) and any(p.isolated for p in doc.points)
    doc.points[0].efficiency, doc.points[0].flags = 1.05, {"efficiency": "above 100%: noise"}
    t = Table(_sweep_table(doc))
    headers, rows = sweep_rows(doc)
    for terminal, report in (("notes", "notes"), ("eff.", "efficiency"), ("thr", "threads")):
        assert t.column(report) == [r[headers.index(terminal)] for r in rows], terminal
    assert t.column("efficiency")[0] == "105%!" and "busy (" in " ".join(t.column("notes"))
