"""Conventions every command shares: --version/-V, shell completion, one meaning per short option,
usage lines with real names, and a quiet exit when the reader of stdout goes away (like cat)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from blastune import __version__
from blastune.cli import CLOSED_PIPE_STATUS, app

DATA = Path(__file__).parent / "data" / "docs_0_1_0"
QUIET = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
# the table documented in README.md, "Options shared by all commands"
SHORT = {
    "-o": "--out",
    "-s": "--size",
    "-n": "--tasks",
    "-t": "--threads",
    "-j": "--jobs",
    "-q": "--quiet",
    "-f": "--format",
    "-w": "--wide",
    "-r": "--repeats",
    "-d": "--dtype",
    "-b": "--budget",
    "-l": "--layouts",
    "-c": "--cpus-per-task",
    "-h": "--help",
    "-V": "--version",
    "-L": "--label",
    "-k": "--kind",
    "-m": "--match",
    "-i": "--job-index",
    "-p": "--partition",
    "-A": "--account",
}


def commands():
    group = typer.main.get_command(app)
    return group, {name: group.get_command(None, name) for name in group.list_commands(None)}


def test_version_long_and_short():
    for flag in ("--version", "-V"):
        proc = subprocess.run(["blastune", flag], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout.strip() == f"blastune {__version__}"


def test_each_short_option_means_one_thing_everywhere():
    group, cmds = commands()
    seen: dict[str, set] = {}
    for name, cmd in [("", group), *cmds.items()]:
        for param in cmd.params:
            longs = [o for o in param.opts + param.secondary_opts if o.startswith("--")]
            for short in [o for o in param.opts + param.secondary_opts if len(o) == 2]:
                seen.setdefault(short, set()).update((lg, name) for lg in longs[:1])
    meanings = {s: {lg for lg, _ in uses} for s, uses in seen.items()}
    clashes = {s: m for s, m in meanings.items() if len(m) > 1}
    assert not clashes, clashes
    undocumented = {s: m for s, m in meanings.items() if SHORT.get(s) not in m}
    assert not undocumented, f"add them to README's table and SHORT: {undocumented}"
    # the ones the issue named
    assert (
        meanings["-n"] == {"--tasks"}
        and meanings["-o"] == {"--out"}
        and meanings["-s"] == {"--size"}
    )
    assert "-q" in {o for p in cmds["sweep"].params for o in p.opts}


def test_usage_lines_show_real_names():
    _, cmds = commands()
    runner = CliRunner()
    for name in cmds:
        result = runner.invoke(app, [name, "--help"])
        usage = result.output.splitlines()[0]
        assert "{" not in usage, usage
    usage = runner.invoke(app, ["compare", "--help"]).output.splitlines()[0]
    assert usage.endswith("compare [OPTIONS] A.json B.json")


def test_shell_completion_is_on_and_works_through_the_console_script():
    proc = subprocess.run(
        ["blastune", "--show-completion", "bash"],
        capture_output=True,
        text=True,
        env={**os.environ, "SHELL": "/bin/bash"},
    )
    assert proc.returncode == 0 and "_blastune_completion" in proc.stdout
    env = {
        **os.environ,
        "_BLASTUNE_COMPLETE": "complete_bash",
        "COMP_WORDS": "blastune swe",
        "COMP_CWORD": "1",
    }
    proc = subprocess.run(["blastune"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.split() == ["sweep"]
    env.update(COMP_WORDS="blastune plot --ki", COMP_CWORD="2")
    proc = subprocess.run(["blastune"], capture_output=True, text=True, env=env)
    assert proc.stdout.split() == ["--kind"]
    # and a real bash completes with the script --show-completion prints
    script = subprocess.run(
        ["blastune", "--show-completion", "bash"],
        capture_output=True,
        text=True,
        env={**os.environ, "SHELL": "/bin/bash"},
    ).stdout
    bash = (
        f"{script}\nCOMP_WORDS=(blastune rep); COMP_CWORD=1; _blastune_completion blastune; "
        'echo "${COMPREPLY[@]}"'
    )
    out = subprocess.run(["bash", "-c", bash], capture_output=True, text=True)
    assert out.stdout.split() == ["report"], out.stderr


def test_usage_errors_stay_one_line_with_completion_on():
    for args in (["--bogus"], ["sweep", "--threads", "x"], ["plot"], ["compare", "--format"]):
        proc = subprocess.run(["blastune", *args], capture_output=True, text=True)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.startswith("blastune: error:") and proc.stderr.count("\n") == 1, (
            proc.stderr
        )
        assert "Traceback" not in proc.stderr


# --- a closed pipe: quiet, like cat (issue 11) -------------------------------------------------------


def closed_reader(args, env=None, timeout=300):
    """Run the console script with stdout a pipe whose reader is already gone."""
    proc = subprocess.Popen(
        ["blastune", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env or QUIET,
    )
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return proc.wait(timeout=timeout), err


@pytest.mark.parametrize(
    "args",
    [
        ["info"],
        ["info", "--json"],
        ["doctor", "--json"],
        ["ps"],
        ["--help"],
        ["sweep", "--help"],
        ["--version"],
        ["env", "-t", "1"],
        ["compare", DATA / "sweep_before_openblas.json", DATA / "sweep_after_blis.json", "--json"],
        ["sweep", "--op", "all", "--size", "32", "--threads", "1,2", "--budget", "2", "--json"],
        [
            "jobs",
            "--op",
            "dot",
            "--size",
            "32",
            "--tasks",
            "20",
            "--layouts",
            "serial,process:2x1",
            "--repeats",
            "1",
            "--no-save-profile",
            "--json",
        ],
        ["slurm", "--tasks", "2", "--", "echo", "{task}"],
    ],
    ids=lambda a: " ".join(map(str, a[:2])) if isinstance(a, list) else None,
)
def test_a_reader_that_went_away_ends_every_command_quietly(args):
    rc, err = closed_reader(args)
    assert err == "", err  # no traceback, no "internal error", no "Exception ignored"
    assert rc == CLOSED_PIPE_STATUS  # what the shell shows for cat killed by SIGPIPE


def test_head_closing_the_pipe_through_a_real_shell():
    # the shapes from the issue, with pipefail so blastune's own status is seen
    for cmd in (
        "blastune info | head -1",
        "blastune sweep --op all --size 32,48 --threads 1,2 --budget 2 --json | head -c1",
    ):
        proc = subprocess.run(
            ["bash", "-c", f'set -o pipefail; {cmd}; echo "status=${{PIPESTATUS[0]}}" >&2'],
            capture_output=True,
            text=True,
            env=QUIET,
            timeout=300,
        )
        lines = proc.stderr.splitlines()
        assert lines[-1] in ("status=0", f"status={CLOSED_PIPE_STATUS}"), (
            proc.stderr
        )  # 0: it all fit the pipe
        assert lines[:-1] == [], proc.stderr
        assert proc.stdout


def test_a_closed_pipe_in_the_cli_runner_is_not_an_internal_error(monkeypatch):
    # the same path in-process: a command whose output write fails with EPIPE
    import blastune.cli.info as info_cli

    def broken(*a, **k):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(info_cli, "echo", broken)
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == CLOSED_PIPE_STATUS
    assert "internal error" not in result.output


def test_python_m_blastune_gets_the_same_quiet_exit():
    proc = subprocess.Popen(
        [sys.executable, "-m", "blastune", "info"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=QUIET,
    )
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == CLOSED_PIPE_STATUS and err == ""
