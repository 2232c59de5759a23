"""Every option README.md and docs/*.md name exists in the real CLI, for that command, with that
meaning. A user who followed docs/sweep.md's old `--op, -o` ran `blastune sweep -o svd -s 300`: it
measured dot and wrote a results file named `svd`, without a word.

What is read from the Markdown (fenced code blocks and `code spans`):
- ``blastune CMD [SUB] ... --opt -x`` (also inside ``eval "$(...)"``, ``python -m blastune ...``):
  each option must be one of CMD's.
- ``CMD --opt`` in a code span that starts with a command's name (``recommend --jobs N``).
- a pair ``-x/--long``, ``--long/-x``, or a table row's first cell ```--long`, `-x``` : the short
  option must be the long one's short form in the commands of that place.
- a bare ```--opt``` : it must belong to one of the commands of its place -- those named in the same
  table row or paragraph, else the section heading's, else the page's.
- README's table "Options shared by all commands": short, long and the commands it lists.
Options of other programs (``sbatch``, ``srun``, ``dask``, ``docker``, ``taskset``, ``#SBATCH``, a
user's ``python fit.py``) are left out by the word they follow.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from blastune.cli import app

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# words after which options are another program's
FOREIGN = {
    "srun",
    "sbatch",
    "#SBATCH",
    "dask",
    "docker",
    "taskset",
    "python",
    "pip",
    "apt-get",
    "numactl",
    "export",
    "git",
    "mpirun",
    "salloc",
    "scontrol",
    "worker",
    "pytest",
}
OPTION = re.compile(r"(?<![\w\-/.=$])(--[A-Za-z][\w-]*|-[A-Za-z])(?![\w-])")


def cli():
    """{command (or 'profile show'): {option: its long form}} from the typer app itself."""
    group = typer.main.get_command(app)
    out: dict[str, dict[str, str]] = {}

    def add(name, cmd):
        opts = {"-h": "--help", "--help": "--help"}
        for p in cmd.params:
            names = list(p.opts) + list(p.secondary_opts)
            longs = [o for o in names if o.startswith("--")]
            for o in names:
                opts[o] = longs[0] if o in p.opts and longs else o
        out[name] = opts

    for name in group.list_commands(None):
        cmd = group.get_command(None, name)
        add(name, cmd)
        for sub in getattr(cmd, "commands", {}):
            add(f"{name} {sub}", cmd.commands[sub])
    out[""] = {
        "--version": "--version",
        "-V": "--version",
        "--help": "--help",
        "-h": "--help",
        "--install-completion": "--install-completion",
        "--show-completion": "--show-completion",
    }
    return out


CLI = cli()
COMMANDS = sorted({k.split()[0] for k in CLI if k})
# the commands a page is about when no nearer place names one
PAGE_COMMANDS: dict = {
    "sweep.md": ["sweep", "compare"],
    "jobs.md": ["jobs", "recommend", "env", "profile"],
    "doctor.md": ["doctor", "ps"],
    "cluster.md": ["slurm", "env", "run"],
    "plots.md": ["plot", "report", "sweep"],
    "info.md": ["info"],
    "topology.md": ["layout", "env", "run"],
    "architecture.md": COMMANDS,
    "README.md": COMMANDS,
}
# mentions of another program's options in prose, each with the reason it is not blastune's
NOT_OURS = {
    ("cluster.md", "--ntasks"): "the #SBATCH line the slurm script prints",
    ("topology.md", "--cpuset-cpus"): "docker's option, which env --shell docker prints",
}


class Mention:
    def __init__(self, page, line, text, commands, pair=None, explicit=False):
        self.page, self.line, self.text = page, line, text
        self.commands, self.pair, self.explicit = commands, pair, explicit

    def __repr__(self):
        return f"{self.page}:{self.line}: {self.text!r}"


def _blastune_invocations(text: str):
    """(command, [options]) for each 'blastune CMD ...' in a line of code."""
    for m in re.finditer(r"\bblastune\s+([a-z][\w-]*)((?:\s+[a-z][\w-]*)?)", text):
        name = m.group(1)
        if name not in COMMANDS:
            continue
        sub = m.group(2).strip()
        cmd = f"{name} {sub}" if f"{name} {sub}" in CLI else name
        rest = text[m.end(1) if cmd == name else m.end(2) :]
        # the invocation ends at the command it runs (' -- '), a pipe, a list, a subshell, a comment
        rest = re.split(r"\s--(?:\s|$)|\||&&|;|\)|\"|`|\s#|\s>", rest)[0]
        yield cmd, OPTION.findall(rest)


def _commands_named(text: str) -> list[str]:
    named = re.findall(r"\bblastune\s+([a-z][\w-]*)", text)
    named += re.findall(r"`([a-z]+)(?:`|\s|'s)", text)
    named += re.findall(r"(?:^|[\s(])([a-z]+)'s\b", text)
    return [n for n in named if n in COMMANDS]


def mentions():
    for page in PAGES:
        default = PAGE_COMMANDS.get(page.name, [])
        section: list[str] = []
        sections: list[tuple[int, list[str]]] = []
        readme_shared = fence = False
        lines = page.read_text(encoding="utf-8").splitlines()
        # paragraphs: runs of non-blank lines (a table row is its own paragraph)
        para_of: dict[int, str] = {}
        start = 0
        for i, line in enumerate(lines + [""]):
            if not line.strip() or line.lstrip().startswith("|") or line.startswith("#"):
                for k in range(start, i):
                    para_of[k] = " ".join(lines[start:i])
                if line.strip():
                    para_of[i] = line
                start = i + 1
        for i, line in enumerate(lines):
            n = i + 1
            if line.lstrip().startswith("```"):
                fence = not fence
                continue
            # an indented code block
            indented = line.startswith("    ") and re.match(r"\s*(\$ )?blastune ", line)
            if fence or indented:
                for cmd, opts in _blastune_invocations(line):
                    for o in opts:
                        yield Mention(page.name, n, o, [cmd], explicit=True)
                continue
            if line.startswith("#"):  # a heading names its section's commands; sub-sections inherit
                level = len(line) - len(line.lstrip("#"))
                named = _commands_named(line)
                sections = [(lv, c) for lv, c in sections if lv < level] + [(level, named)]
                section = next((c for _, c in reversed(sections) if c), [])
            if readme_shared and line.lstrip().startswith("|"):
                continue  # README's short-option table: test_readme_shared_short_options_table
            if line.startswith("### Options shared by all commands"):
                readme_shared = True
            elif line.startswith("#"):
                readme_shared = False
            named = _commands_named(para_of.get(i, line))
            place = list(dict.fromkeys(named + section + default + [""]))
            spans = re.findall(r"`([^`]+)`", line)
            if line.lstrip().startswith("|"):  # a table row: its first cell may pair long and short
                first = line.strip().strip("|").split("|")[0]
                cell = re.findall(r"`([^`]+)`", first)
                longs = [o for c in cell for o in OPTION.findall(c) if o.startswith("--")]
                shorts = [o for c in cell for o in OPTION.findall(c) if not o.startswith("--")]
                if len(longs) == 1 and len(shorts) == 1 and all(c.startswith("-") for c in cell):
                    yield Mention(page.name, n, shorts[0], place, pair=longs[0])
            for span in spans:
                if (
                    any(re.search(rf"(^|\s){re.escape(w)}(\s|$)", span) for w in FOREIGN)
                    and "blastune" not in span
                ):
                    continue
                if span.startswith("#"):
                    continue
                found = list(_blastune_invocations(span))
                if found:
                    for cmd, opts in found:
                        for o in opts:
                            yield Mention(page.name, n, o, [cmd], explicit=True)
                    continue
                words = span.split()
                if words and words[0] in COMMANDS:
                    for o in OPTION.findall(span):
                        yield Mention(page.name, n, o, [words[0]], explicit=True)
                    continue
                pair = re.fullmatch(
                    r"(-[A-Za-z])/(--[\w-]+)(?:\s.*)?"
                    r"|(--[\w-]+)/(-[A-Za-z])(?:\s.*)?",
                    span,
                )
                if pair:
                    if pair.group(1):
                        short, long_ = pair.group(1), pair.group(2)
                    else:
                        short, long_ = pair.group(4), pair.group(3)
                    yield Mention(page.name, n, short, place, pair=long_)
                    continue
                if span.startswith("-"):
                    for o in OPTION.findall(span):
                        if (page.name, o) not in NOT_OURS:
                            yield Mention(page.name, n, o, place)


def problem(m: Mention) -> str | None:
    cmds = [c for c in m.commands if c in CLI] or [""]
    where = " or ".join(f"'blastune {c}'" if c else "'blastune'" for c in cmds)
    if m.pair:
        meanings = {c: CLI[c].get(m.text) for c in cmds}
        if m.pair not in meanings.values():
            said = ", ".join(f"{c}: {v}" for c, v in meanings.items() if v) or "nothing"
            return f"{m!r}: documented as {m.pair} in {where}, but it means {said}"
        return None
    if not any(m.text in CLI[c] for c in cmds):
        return f"{m!r}: {where} has no option {m.text}"
    return None


ALL = list(mentions())


def test_the_pages_name_many_options():
    # the extraction itself works: a change to the Markdown parser that finds nothing fails here
    assert len(ALL) > 150
    assert sum(m.explicit for m in ALL) > 60
    assert any(m.pair for m in ALL)


@pytest.mark.parametrize("page", [p.name for p in PAGES])
def test_every_option_on_the_page_exists_with_that_meaning(page):
    problems = [p for m in ALL if m.page == page and (p := problem(m))]
    assert not problems, "\n".join(problems)


def test_readme_shared_short_options_table():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("### Options shared by all commands", 1)[1].split("\n\n", 2)[2]
    rows = [r for r in table.split("\n\n")[0].splitlines() if r.startswith("| `")]
    assert len(rows) > 10
    problems = []
    for row in rows:
        short_cell, long_cell, where = [c.strip() for c in row.strip().strip("|").split("|")[:3]]
        shorts = re.findall(r"`(-[A-Za-z])`", short_cell)
        longs = OPTION.findall(long_cell)
        longs = [o for o in longs if o.startswith("--")]
        assert len(shorts) == len(longs), row
        # 'all / blastune' pairs '-h', '-V' one to one; else every short goes with every command
        wheres = (
            [w.strip() for w in where.split(" / ")]
            if len(where.split(" / ")) == len(shorts)
            else [where] * len(shorts)
        )
        for short, long_, place in zip(shorts, longs, wheres):
            listed = [w.strip() for w in place.split(" (")[0].split(",")]
            cmds = [c for c in listed if c in CLI] + ([""] if place == "blastune" else [])
            also = re.search(rf"\(`{short}` also ([a-z, ]+)\)", place)  # plot (`-L` also report)
            cmds += [c.strip() for c in also.group(1).split(",")] if also else []
            if place == "all" or "every command" in place:
                cmds += [c for c in CLI if short in CLI[c]]
            assert cmds, row
            for c in cmds:
                if CLI[c].get(short) != long_:
                    problems.append(
                        f"README: {short} documented as {long_} in '{c}', is {CLI[c].get(short)}"
                    )
            if place != "all" and "every command" not in place:  # every command having it listed
                having = {c.split()[0] for c in CLI if c and short in CLI[c]}
                if having - set(cmds):
                    problems.append(
                        f"README: {short} is also in {sorted(having - set(cmds))}, not listed"
                    )
    assert not problems, "\n".join(problems)


def test_the_check_catches_the_old_sweep_options():
    # what docs/sweep.md said before 0.2.x: `--op`, `-o` and `--size`, `-n`
    old = [
        Mention("sweep.md", 21, "-o", ["sweep", "compare"], pair="--op"),
        Mention("sweep.md", 22, "-n", ["sweep", "compare"], pair="--size"),
        Mention("x.md", 1, "--nope", ["sweep"], explicit=True),
    ]
    assert all(problem(m) for m in old)
    assert problem(Mention("sweep.md", 23, "-t", ["sweep"], pair="--threads")) is None
