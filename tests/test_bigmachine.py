"""bench/bigmachine.sh: the big-machine check a user runs on a many-core machine.

Its quick mode takes about a minute on this shared 2-core machine (55 s once, under load), too long
for the suite; so the tests check what can break without running it: the shell parses, every
blastune command and option it calls exists in the CLI, every benchmark it calls exists and takes
the options it is given, and it refuses, before running anything, an output folder that holds
files (nothing a user saved is written over without --force) and an option it does not know.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from blastune.cli import app

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "bench" / "bigmachine.sh"
BASH = shutil.which("bash")

pytestmark = pytest.mark.skipif(BASH is None, reason="no bash here")


def _logical_lines(text: str) -> list[str]:
    return text.replace("\\\n", " ").splitlines()


def _arrays(lines: list[str]) -> dict[str, set[str]]:
    """name -> every word any ``name=(...)`` assignment gives it (quick and full mode alike)."""
    out: dict[str, set[str]] = {}
    for line in lines:
        m = re.match(r"\s*(\w+)=\((.*)\)\s*$", line)
        if m:
            out.setdefault(m.group(1), set()).update(shlex.split(m.group(2)))
    return out


def _calls(prog: str) -> list[list[str]]:
    """The words after ``prog`` in every ``step`` line, arrays expanded."""
    lines = _logical_lines(SCRIPT.read_text())
    arrays = _arrays(lines)
    calls = []
    for line in lines:
        words = shlex.split(line.strip()) if line.strip().startswith("step ") else []
        if prog not in words:
            continue
        expanded = []
        for w in words[words.index(prog) + 1 :]:
            m = re.fullmatch(r"\$\{(\w+)\[@\]\}", w)
            expanded += sorted(arrays[m.group(1)]) if m else [w]
        calls.append(expanded)
    return calls


def test_the_script_parses():
    res = subprocess.run([BASH, "-n", str(SCRIPT)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_every_blastune_command_and_option_it_calls_exists():
    group = typer.main.get_command(app)
    calls = _calls("$blastune")
    assert {c[0] for c in calls} >= {"info", "doctor", "sweep", "jobs", "recommend"}
    for words in calls:
        cmd = group.commands.get(words[0])
        assert cmd is not None, f"bigmachine.sh calls 'blastune {words[0]}', which does not exist"
        known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
        unknown = [w for w in words[1:] if w.startswith("--") and w not in known]
        assert not unknown, f"blastune {words[0]} has no {unknown}"


def test_every_benchmark_it_calls_exists_and_takes_its_options():
    calls = _calls("$python")
    scripts = {c[0].replace("$here/", "") for c in calls}
    assert scripts == {"limit_truth.py", "oversubscription.py", "limit_overhead.py"}
    for words in calls:
        path = REPO / "bench" / words[0].replace("$here/", "")
        assert path.is_file(), path
        usage = subprocess.run(
            [sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=120
        )
        assert usage.returncode == 0, usage.stderr
        unknown = [w for w in words[1:] if w.startswith("--") and w not in usage.stdout]
        assert not unknown, f"{path.name} has no {unknown}"


def test_it_refuses_a_folder_with_files_and_an_unknown_option(tmp_path):
    kept = tmp_path / "SUMMARY.md"
    kept.write_text("a colleague's results\n")
    res = subprocess.run(
        [BASH, str(SCRIPT), "--quick", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 2 and "not empty" in res.stderr and "--force" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "==" not in res.stderr  # nothing ran
    assert kept.read_text() == "a colleague's results\n" and sorted(tmp_path.iterdir()) == [kept]
    res = subprocess.run([BASH, str(SCRIPT), "--fast"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "unknown option '--fast'" in res.stderr
