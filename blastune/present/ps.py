"""``blastune ps`` for people: one row per process running a BLAS, and what the columns mean."""

from __future__ import annotations

from blastune.present.rows import number
from blastune.present.tables import fit_table


# '..._NUM_THREADS' and the like: the part a reader needs to know which library a count is for
_THREAD_SUFFIXES = ("_NUM_THREADS", "_MAXIMUM_THREADS", "_THREADS")


def _short_var(name: str) -> str:
    """A thread variable without its suffix: 'X_NUM_THREADS' -> 'X', 'Y_MAXIMUM_THREADS' -> 'Y'
    (explained under the table; the names themselves live in the vendor registry)."""
    for suffix in _THREAD_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _env(env: dict[str, str] | None, wide: bool = False) -> str:
    """The thread counts it was given: 'OPENBLAS=1 OMP=1', or '1 (7 vars)' when set all alike
    (blastune env/run set them so); other variables (MKL_DYNAMIC, ...) are in --wide and --json."""
    if env is None:
        return "(unreadable)"
    if wide:
        return " ".join(f"{k}={v}" for k, v in env.items()) or "-"
    counts = {k: v for k, v in env.items() if k.endswith(_THREAD_SUFFIXES)}
    values = set(counts.values())
    if len(counts) > 2 and len(values) == 1:
        return f"{values.pop()} ({len(counts)} vars)"
    return " ".join(f"{_short_var(k)}={v}" for k, v in counts.items()) or "-"


def _waited(p) -> str:
    if p.wait_share_pct is None:
        return "-"
    return f"{p.wait_share_pct:.0f}" + ("!" if p.contended else "")


def _command(cmd: str, wide: bool) -> str:
    """'/root/.pyenv/versions/3.11.7/bin/python3 -m pytest' -> 'python3 -m pytest', as top shows it:
    the program's name and what it runs matter more than where it is installed (--wide: whole)."""
    if wide:  # whole, but on one line: a 'python -c' script's newlines as \n, the way ps(1) escapes
        return cmd.replace("\n", "\\n")
    exe, sep, rest = cmd.partition(" ")
    if exe.startswith("/"):
        exe = exe.rsplit("/", 1)[-1]
    return " ".join((exe + sep + rest).split())


HEADERS = ["pid", "user", "vendors", "threads", "BLAS", "CPU %", "wait %", "env vars", "command"]


def process_row(p, wide: bool = False) -> list:
    """One process as ``HEADERS`` lists its cells."""
    return [
        p.pid,
        p.user or "?",
        ", ".join(p.vendors),
        p.threads,
        p.blas_threads,
        number(p.cpu_percent, ".0f"),
        _waited(p),
        _env(p.env, wide),
        _command(p.command, wide),
    ]


def render_ps(census, fmt: str = "simple", wide: bool = False) -> str:
    """``blastune ps`` in the terminal: the table, the verdict, and what the columns mean."""
    rows = [process_row(p, wide) for p in census.processes]
    # the command takes the width left over, one line per process, cut at its end (fit_table)
    out = [
        fit_table(rows, HEADERS, fmt, wide=wide, clip=(8,))
        if rows
        else "(no process with a BLAS or OpenMP runtime found)"
    ]
    out.append(f"\n{census.verdict}: {census.message}")
    if rows:
        out.append("BLAS: the threads one BLAS call in it runs; threads: all its threads")
    if census.measured_by == "schedstat" and rows:
        out.append(
            f"wait %: share of the time its threads wanted a CPU spent waiting for one, over "
            f"{census.interval:g} s; ! = over {census.threshold_pct:g}% while it computed"
        )
    if rows and not wide and any(p.env for p in census.processes):
        out.append(
            "env vars: OMP=1 is OMP_NUM_THREADS=1; '1 (5 vars)': five thread variables, "
            "all 1; every variable whole with --wide"
        )
    out += [f"note: {n}" for n in census.notes]
    return "\n".join(out)
