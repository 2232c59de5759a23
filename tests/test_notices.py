"""Notices and warnings on stderr wrap to COLUMNS (one helper, blastune.cli.render.notice): a
311-character 'notice: not saved in the profile ...' line from `jobs` ran off every terminal."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

BLASTUNE = shutil.which("blastune") or ""
LONG = (
    "not saved in the profile, from noisy measurements: 1 job(s) (serial x 1 BLAS thread: "
    "disturbed by other programs, its threads waited 196% of the time for a CPU); re-run "
    "when the machine is quieter, or save the results (--out) and take them anyway with "
    "`blastune recommend --from FILE --accept-noisy`"
)


def notice_stderr(columns: str | None, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns:
        env["COLUMNS"] = columns
    code = (
        "import sys; from blastune.cli.render import notice, set_wide; "
        "set_wide(len(sys.argv) > 2); notice(sys.argv[1])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, LONG, *args], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0 and proc.stdout == ""
    return proc.stderr


@pytest.mark.parametrize("columns", ["100", "60"])
def test_notice_wraps_to_columns_with_a_hanging_indent(columns):
    lines = notice_stderr(columns).splitlines()
    assert len(LONG) > 250 and len(lines) > 3
    assert max(len(line) for line in lines) <= int(columns)
    assert lines[0].startswith("blastune: notice: not saved in the profile")
    assert all(line.startswith("  ") and not line.startswith("   ") for line in lines[1:])
    assert " ".join(line.strip() for line in lines) == "blastune: notice: " + LONG  # nothing lost


def test_notice_is_100_columns_off_a_terminal_and_whole_with_wide():
    assert max(len(line) for line in notice_stderr(None).splitlines()) <= 100
    assert notice_stderr("60", "--wide") == f"blastune: notice: {LONG}\n"


@pytest.mark.skipif(not BLASTUNE, reason="the blastune console script is not on PATH")
def test_run_report_lines_wrap_to_columns():
    env = {**os.environ, "COLUMNS": "50", "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(
        [BLASTUNE, "run", "-t", "1", "--report", "--", sys.executable, "-c", "pass"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and max(len(line) for line in lines) <= 50, proc.stderr
    assert any(len(line) > 40 for line in lines)  # long enough to have needed the wrapping
