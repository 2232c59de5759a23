"""--help of every command at COLUMNS=100: one placeholder convention (N, FILE, SECONDS, LIST, STYLE
or the choices), never typer's type names (<int>, <str>, <path>, <list[Path]>, <float range>), and
no word broken across lines ('pr ocess:2x1' in jobs --layouts)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import typer.main

from blastune.cli import app

GROUP = typer.main.get_command(app)


def all_commands():
    out = [((), GROUP)]
    for name in GROUP.list_commands(None):
        cmd = GROUP.get_command(None, name)
        out.append(((name,), cmd))
        for sub, subcmd in getattr(cmd, "commands", {}).items():
            out.append(((name, sub), subcmd))
    return out


COMMANDS = all_commands()


def help_of(path: tuple[str, ...]) -> str:
    proc = subprocess.run(
        ["blastune", *path, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize(
    "path, cmd", COMMANDS, ids=[" ".join(p) or "blastune" for p, _ in COMMANDS]
)
def test_help_has_no_type_names_and_no_broken_words(path, cmd):
    text = help_of(path)
    assert max(len(line) for line in text.splitlines()) <= 100
    type_names = re.findall(r"<(?:int|str|float|path|bool|text|list|file|choice)[^>]*>", text, re.I)
    assert not type_names, type_names
    flat = " ".join(text.split())
    for param in cmd.params:
        if param.hidden if hasattr(param, "hidden") else False:
            continue
        if getattr(param, "help", None):  # the help text reads whole, every word in one piece
            assert " ".join(param.help.split()) in flat, f"{param.name}: {param.help!r}"
        if param.param_type_name == "option" and not getattr(param, "is_flag", False):
            shown = param.opts[-1] if len(param.opts) == 1 else param.opts[0]
            entry = re.search(re.escape(shown) + r"\s+(\S+)", text)
            assert entry and re.fullmatch(r"[A-Z0-9_.:\[\],|a-z%-]+(\.\.\.)?", entry.group(1)), (
                shown,
                entry and entry.group(1),
            )


def test_the_placeholders_follow_one_convention():
    text = help_of(("jobs",)) + help_of(("ps",)) + help_of(("plot",)) + help_of(("env",))
    for expected in (
        "-n, --tasks N",
        "-b, --budget SECONDS",
        "-l, --layouts LIST",
        "-o, --out FILE",
        "-f, --format STYLE",
        "--interval SECONDS",
        "-t, --threads T",
        "--shell SHELL",
    ):
        assert expected in text, expected
    assert "FILE.json... <list[Path]>" not in text and "FILE.json..." in text
