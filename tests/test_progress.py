"""The one progress bar of sweep and jobs, seen the way a person sees it: on a real terminal (a pty
100 columns wide), from the installed ``blastune``."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios
from pathlib import Path

import pytest

from tests.conftest import child_env

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a Linux pty")

TESTS = Path(__file__).resolve().parent


def on_a_terminal(args: list[str], tmp_path, timeout: float = 120.0) -> tuple[int, list[str]]:
    """Run ``blastune ARGS`` on a 100-column pty -> (exit status, every distinct line it drew)."""
    env = child_env({"COLUMNS": "100"}, threads=1)
    env["PYTHONPATH"] = str(TESTS) + os.pathsep + env["PYTHONPATH"]
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env.pop("NO_COLOR", None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the terminal
        os.chdir(tmp_path)
        os.execvpe("blastune", ["blastune", *args], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    out = b""
    while select.select([fd], [], [], timeout)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.decode(errors="replace"))  # colours
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "\n", text)  # cursor moves: a new frame
    lines = [line.rstrip() for line in re.split(r"[\r\n]+", text) if line.strip()]
    return os.waitstatus_to_exitcode(status), list(dict.fromkeys(lines))


def bars(lines: list[str]) -> list[str]:
    return [line for line in lines if re.search(r" \d+/\d+ \d:\d\d:\d\d", line)]


def test_sweep_draws_a_bar_with_the_point_and_an_eta(tmp_path):
    args = ["sweep", "--op", "dot", "--size", "200", "-t", "1,2", "-b", "2"]
    status, lines = on_a_terminal(args, tmp_path)
    assert status == 0, lines
    drawn = bars(lines)
    assert any(
        re.match(r"dot n=200 float64 2 thr .* 1/2 \d:\d\d:\d\d ETA \d:\d\d$", b) for b in drawn
    )
    assert not any("ETA 0:00" in b for b in drawn)  # never while a point remains
    assert all(len(line) <= 100 for line in lines), lines
    assert any(line.startswith("dot  ") for line in lines)  # then the table


def test_jobs_says_its_plan_then_draws_a_bar_per_layout_with_an_eta(tmp_path):
    args = ["jobs", "--op", "dot", "--size", "100", "-r", "2"]  # batches of about 1 s
    status, lines = on_a_terminal([*args, "--layouts", "thread:2x1", "--no-save-profile"], tmp_path)
    assert status == 0, lines
    assert any(
        re.fullmatch(r"plan: 2 layouts x up to 2 batch\(es\) of \d+ tasks, about \d:\d\d", line)
        for line in lines
    ), lines
    drawn = bars(lines)
    assert any(re.match(r"thread:2x1 .* 1/4 \d:\d\d:\d\d ETA \d:\d\d$", b) for b in drawn), drawn
    assert not any("ETA 0:00" in b for b in drawn)
    assert all(len(line) <= 100 for line in lines), lines


def test_no_bar_with_quiet_even_on_a_terminal(tmp_path):
    status, lines = on_a_terminal(
        ["sweep", "--op", "dot", "--size", "200", "-t", "1", "-b", "1", "-q"], tmp_path
    )
    assert status == 0 and not bars(lines), lines
