"""``blastune doctor`` for people: its rows, built once for the terminal and the HTML report."""

from __future__ import annotations

import shutil
import textwrap

from blastune.present.tables import fit_table

HEADERS = ["severity", "check", "finding / fix"]
# warnings and errors in capitals: the eye finds them among a screen of ok
MARK = {"ok": "ok", "info": "info", "warning": "WARNING", "error": "ERROR"}


def finding_row(f) -> list[str]:
    """[mark, check id, finding, fix]: how a finding reads in every table."""
    return [MARK[f.severity], f.id, f.finding, f.fix]


def summary_line(report) -> str:
    """The counts and what they were judged against, under the table."""
    return (
        f"{report.tally()}  (usable cores: {report.usable_cores}, limited by "
        f"{report.usable_basis}; jobs: {report.jobs})"
    )


def _wrap(text: str, width: int, indent: str = "") -> str:
    return textwrap.fill(
        text, width, subsequent_indent=indent, break_on_hyphens=False, break_long_words=False
    )


def render_doctor(
    report, fmt: str = "simple", show_ok: bool = True, width: int | None = None, wide=False
) -> str:
    """``blastune doctor`` in the terminal: each finding wrapped, its fix under it."""
    # the finding column gets what the terminal leaves after the mark and the check id
    width = max(40, (width or shutil.get_terminal_size((140, 24)).columns) - 33)
    rows = [
        [
            mark,
            check,
            _wrap(finding, width) + (f"\n{_wrap('  fix: ' + fix, width, ' ' * 7)}" if fix else ""),
        ]
        for mark, check, finding, fix in map(finding_row, report.findings)
        if show_ok or mark != "ok"
    ]
    out = [fit_table(rows, HEADERS, fmt, wide=wide) if rows else "no problems found"]
    out.append("\n" + summary_line(report))
    out += [f"note: {n}" for n in report.notes]
    return "\n".join(out)
