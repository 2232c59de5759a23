"""`blastune ps` at 100 columns: a readable command, compact thread variables, one ellipsis style,
and the processes that could not be inspected named with the reason."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from blastune.present.ps import render_ps
from blastune.facts.census import BlasProcess, _census, _unreadable_note, processes
from blastune.present.tables import fit_table, fit_text
from tests.conftest import child_env

BLASTUNE = shutil.which("blastune") or ""
SEVEN = {
    v: "1"
    for v in (
        "OPENBLAS_NUM_THREADS",
        "GOTO_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "BLIS_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    )
}
SPAWN = (
    "/root/.pyenv/versions/3.11.7/bin/python3 -B -c "
    "from multiprocessing.spawn import spawn_main; "
    "spawn_main(tracker_fd=5, pipe_handle=7) --multiprocessing-fork"
)


def proc(pid, env, command=SPAWN, vendors=("openblas",)):
    return BlasProcess(
        pid=pid,
        user="root",
        command=command,
        vendors=list(vendors),
        libraries=[],
        threads=2,
        cpu_percent=0.0,
        affinity=2,
        env=env,
        blas_threads=1,
        blas_threads_basis="env",
    )


def census():
    procs = [
        proc(123456, {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}),
        proc(123457, SEVEN, vendors=("openblas", "openmp")),
        proc(
            123458, {"OPENBLAS_NUM_THREADS": "1", "MKL_DYNAMIC": "false"}, command="python fit.py"
        ),
        proc(123459, {}, command="python -c \nimport sys\nfor i in range(3):\n    print(i)\n 0 15"),
    ]
    denied = [{"pid": 1, "command": "init", "user": "root", "reason": "permission denied"}]
    return _census(procs, 2, "affinity", 0.0, 1, None, denied)


def rows_of(text, pid):
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(str(pid)))
    return lines[i]


def test_the_command_gets_the_spare_width_and_one_ellipsis_style(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    text = fit_text(render_ps(census()))  # as echo prints it
    assert max(len(line) for line in text.splitlines()) <= 100, text
    row = rows_of(text, 123456)
    command = row[row.index("python3 -B") :]
    assert len(command) >= 30, text  # it was ~18 characters: 'multiproces….spawn im...'
    assert "-B -c from multipro" in command and "/root/.pyenv" not in row
    assert "..." not in text  # '…' only
    # a 'python -c' script with newlines stays on its row
    script = rows_of(text, 123459)
    assert "python -c import sys for i" in script
    assert text.splitlines()[text.splitlines().index(script) + 1].strip() == ""
    # the command keeps one line per process: the next line is the next process or the vars' rest
    header = text.splitlines()[0]
    assert header.split() == [
        "pid",
        "user",
        "vendors",
        "threads",
        "BLAS",
        "CPU",
        "%",
        "wait",
        "%",
        "env",
        "vars",
        "command",
    ]


def test_thread_variables_read_compactly(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    text = render_ps(census())
    assert "OPENBLAS=1" in text and "OMP=1" in text and "1 (7 vars)" in text
    assert "NU…" not in text and "OPENBLAS_NUM_THREADS" not in rows_of(text, 123456)
    assert "MKL_DYNAMIC" not in text  # not a thread count: with --wide
    wide = render_ps(census(), wide=True)
    assert "OPENBLAS_NUM_THREADS=1 MKL_DYNAMIC=false" in wide and SPAWN in wide
    assert "python -c \\nimport sys\\nfor i in range(3)" in wide


def test_uninspectable_processes_are_named_with_the_reason():
    assert census().notes[0] == "could not inspect pid 1 (init): permission denied"
    many = [
        {"pid": p, "command": "x", "user": "bob", "reason": "permission denied: bob's process"}
        for p in range(10, 18)
    ] + [{"pid": 3, "command": "y", "user": None, "reason": "gone"}]
    note = _unreadable_note(9, many)
    assert note.startswith(
        "could not inspect pids 10 (x), 11 (x), 12 (x), 13 (x), 14 (x) "
        "and 3 more: "
        "permission denied: bob's process; pid 3 (y): gone"
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_real_census_names_every_process_it_could_not_read():
    c = processes(interval=0)
    assert c.unreadable == len(c.unreadable_processes)
    for d in c.unreadable_processes:
        assert f"{d['pid']} ({d['command']})" in " ".join(c.notes)
    if os.geteuid() == 0 and c.unreadable:  # root refused: the note says what root lacks
        assert "CAP_SYS_PTRACE" in " ".join(c.notes)


def test_clipped_columns_stay_on_one_line_and_others_shrink_in_proportion():
    rows = [["1", "a b c d e f g h i j", "x" * 80]]
    text = fit_table(rows, ["n", "list", "command"], width=60, clip=(2,))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 60
    assert lines[2].endswith("…") and "x" not in lines[3]  # the list wraps, the command does not
    # without clip it wraps, and the long column still keeps more room than the short one
    text = fit_table([["a b c d e f g h i j k l m n", "y " * 40]], ["short", "long"], width=50)
    first = text.splitlines()[2]
    assert first.index("y") > 10 and len(first) - first.index("y") > 25


@pytest.mark.skipif(not BLASTUNE, reason="the blastune console script is not on PATH")
def test_ps_fits_100_columns_with_real_processes():
    code = "import numpy, time; print('ready', flush=True); time.sleep(60)"
    env = child_env({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        child.stdout.readline()
        out = subprocess.run(
            [BLASTUNE, "ps", "--interval", "0"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "100"},
        )
    finally:
        child.kill()
        child.wait()
    assert out.returncode == 0
    lines = (out.stdout + out.stderr).splitlines()
    assert max(len(line) for line in lines) <= 100
    row = next(line for line in lines if line.startswith(f"{child.pid} "))
    assert "OPENBLAS=1" in row
    assert "import numpy, time" in row or "import numpy, t…" in row
