"""Tables that fit: the one table helper (blastune.present.tables) and every command through it, at
COLUMNS=100 with the installed console script."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from tabulate import tabulate

from blastune.present.tables import (
    fit_table,
    fit_text,
    shorten_middle,
    shorten_path,
    terminal_width,
)

WHEEL = "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/numpy.libs/libscipy_openblas64_-ff651d7f.so"
DATA = Path(__file__).parent / "data" / "docs_0_1_0"


def widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_shorten_path_keeps_whose_copy_and_the_extension():
    assert shorten_path(WHEEL, 38) == "…/numpy.libs/libscipy_openblas64_-….so"
    assert shorten_path(WHEEL, 60) == "…/site-packages/numpy.libs/libscipy_openblas64_-ff651d7f.so"
    assert shorten_path(WHEEL, 200) == WHEEL
    for width in range(8, 90):
        assert len(shorten_path(WHEEL, width)) <= width


def test_shorten_middle_keeps_both_ends():
    assert shorten_middle("abcdefghijklmnopqrstuvwxyz", 10) == "abcdef…xyz"
    assert shorten_middle("libscipy_openblas64_-ff651d7f.so", 16) == "libscipy_ope….so"
    assert shorten_middle("short", 10) == "short"


def rows_with_paths():
    return [
        [
            "numpy",
            "blas",
            "openblas",
            "0.3.31.188.0",
            "pthreads",
            "SkylakeX",
            "2",
            "at run time",
            WHEEL,
        ],
        [
            "scipy",
            "blas",
            "openblas",
            "0.3.30",
            "pthreads",
            "SkylakeX",
            "2",
            "at run time",
            WHEEL.replace("numpy.libs", "scipy.libs"),
        ],
    ]


HEADERS = [
    "package",
    "api",
    "vendor",
    "version",
    "threading",
    "kernel",
    "threads",
    "threads set",
    "file",
]


def test_a_table_wider_than_the_terminal_fits_and_paths_go_below_it():
    text = fit_table(rows_with_paths(), HEADERS, "simple", width=100)
    assert widest(text) <= 100
    assert "[1]" in text and "[2]" in text  # the file column refers to the paths ...
    notes = [line for line in text.splitlines() if line.startswith("[")]
    assert (
        "numpy.libs" in notes[0] and "scipy.libs" in notes[1]
    )  # ... which keep whose copy they are
    assert "0.3.31.188.0" in text and "SkylakeX" in text  # short cells are never cut


def test_long_text_cells_wrap_and_numbers_stay_whole():
    rows = [
        [
            "peak basis",
            "32 FP64 FLOPs/cycle (avx512: 2 FMA units x 8 doubles x 2) x 2596 MHz [clock: "
            "/proc/cpuinfo 'cpu MHz', the clock the kernel or hypervisor reports]; total = per core x 2 usable cores",
        ],
        ["clock", "2596 MHz"],
    ]
    text = fit_table(rows, ["", ""], "simple", width=80)
    assert widest(text) <= 80
    assert "2596 MHz" in text and "hypervisor" in text  # wrapped, nothing lost
    assert text.splitlines()[0].startswith("---")  # all-empty headers: no blank header row


@pytest.mark.parametrize("fmt", ["simple", "grid", "github", "psql", "rounded_outline", "plain"])
def test_every_people_format_fits(fmt):
    text = fit_table(rows_with_paths(), HEADERS, fmt, width=100)
    assert widest(text) <= 100, text


def test_wide_and_machine_formats_are_left_whole():
    plain = tabulate(rows_with_paths(), headers=HEADERS, tablefmt="simple", disable_numparse=True)
    assert fit_table(rows_with_paths(), HEADERS, "simple", width=100, wide=True) == plain
    tsv = fit_table(rows_with_paths(), HEADERS, "tsv", width=100)
    assert WHEEL in tsv


def test_fit_text_wraps_prose_with_a_hanging_indent():
    line = "warning: " + "a limit set through one copy does not reach the others " * 4
    out = fit_text(line, 60)
    assert widest(out) <= 60
    assert all(x.startswith("  ") for x in out.splitlines()[1:])
    assert fit_text("short line", 60) == "short line"


def test_terminal_width_follows_columns_and_is_100_off_a_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "77")
    assert terminal_width() == 77
    monkeypatch.delenv("COLUMNS")
    out = subprocess.run(
        ["python", "-c", "from blastune.present.tables import terminal_width as w; print(w())"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
    )
    assert out.stdout.strip() == "100"  # stdout is a pipe here


QUIET = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize(
    "args",
    [
        ["info"],
        ["doctor"],
        ["ps"],
        ["layout"],
        ["sweep", "--op", "all", "--size", "32,64", "--threads", "1,2", "--budget", "3", "-q"],
        [
            "jobs",
            "--op",
            "dot",
            "--size",
            "64",
            "--tasks",
            "50",
            "--layouts",
            "serial,process:2x1,process:2xdefault",
            "--repeats",
            "1",
            "--no-save-profile",
            "-q",
        ],
        ["compare", DATA / "sweep_before_openblas.json", DATA / "sweep_after_blis.json"],
        ["recommend", "--from", DATA / "jobs.json", "--no-save-profile"],
    ],
    ids=lambda a: a[0] if isinstance(a, list) else None,
)
def test_commands_fit_100_columns(args):
    env = {**os.environ, "COLUMNS": "100"}
    if args[0] in ("sweep", "jobs"):
        env.update(QUIET)
    proc = subprocess.run(
        ["blastune", *map(str, args)], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode in (0, 1), proc.stderr  # doctor exits 1 on warnings only with --strict
    # recommend explains on stderr (its stdout is the exports alone): that text fits too
    text = proc.stdout + (proc.stderr if args[0] == "recommend" else "")
    long = [line for line in text.splitlines() if len(line) > 100]
    assert not long, "\n".join(long)
    assert proc.stdout.strip()


def test_info_wide_shows_whole_paths():
    proc = subprocess.run(
        ["blastune", "info", "--wide"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "100"},
        timeout=120,
    )
    assert proc.returncode == 0
    import blastune

    paths = [lib.filepath for lib in blastune.info().loaded]
    assert paths and all(p in proc.stdout for p in paths)
    fitted = subprocess.run(
        ["blastune", "info"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "60"},
        timeout=120,
    ).stdout
    assert widest(proc.stdout) > 60 and "…" in fitted
