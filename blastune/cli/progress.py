"""The progress bar of ``sweep``, ``jobs`` and ``recommend``: rich, on stderr, with an ETA.

Only for a person watching a terminal: not with -q or --json, nor when stderr is a pipe or a file,
where a line of progress would break "an error is one line". The ETA is the library's
(``blastune.measure.budget``): the measured cost so far, never 0:00 while work remains.
"""

from __future__ import annotations

import sys
import time

import typer

NONE = "—"  # no estimate yet


def clock(seconds: float) -> str:
    """``m:ss``, at least 0:01: said of work that remains."""
    s = max(1, int(round(seconds)))
    return f"{s // 60}:{s % 60:02d}"


class ProgressBar:
    """One bar per run: ``sweep`` and ``jobs`` read their library's events into it."""

    def __init__(self, quiet: bool):
        self.bar = None
        self.task = None
        self.done = 0  # units finished (sweep's events say one at a time)
        self.eta = lambda: None  # seconds left, or None before anything was measured
        if quiet or not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.text import Text

        outer = self

        class EtaColumn(ProgressColumn):
            def render(self, task):
                if task.finished:
                    return Text("")
                left = outer.eta()
                text = NONE if left is None else clock(left)
                return Text(f"ETA {text}", style="progress.remaining")

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            EtaColumn(),
            console=Console(stderr=True),
            transient=True,
        )

    def begin(self, name: str, total: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task(name, total=total)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def sweep(self, event: str, d: dict) -> None:
        """``blastune.sweep(on_point=...)``: "plan", then "start" and "done" per point."""
        if self.bar is None:
            return
        if event == "plan":
            from blastune.measure.budget import eta_from_pace

            start, total, budget = time.monotonic(), d["total"], d["budget_s"]
            self.eta = lambda: eta_from_pace(time.monotonic() - start, self.done, total, budget)
            self.begin("sweep", total)
        elif event == "start":
            what = f"{d['op']} n={d['size']} {d['dtype']} {d['threads']} thr"
            self.bar.update(self.task, description=what)
        elif event == "done":
            self.done += 1
            self.bar.update(self.task, advance=1)

    def jobs(self, event: str, d: dict) -> None:
        """``blastune.jobs(progress=...)``: "plan" (the estimate), "batch" per batch, "done"."""
        if self.bar is None:
            return
        if event == "plan":
            budget = f" (budget {clock(d['budget_s'])})" if d.get("budget_s") else ""
            typer.echo(
                f"plan: {d['layouts']} layouts x up to {d['batches'] // max(1, d['layouts'])} "
                f"batch(es) of {d['tasks']} tasks, about {clock(d['estimate_s'])}{budget}",
                err=True,
            )
            self.begin("jobs", d["batches"])
        elif event == "batch":
            self.eta = lambda left=d["eta_s"]: left
            what = d["layout"].spec
            self.bar.update(self.task, completed=d["done"], total=d["total"], description=what)
        elif event == "done":
            self.stop()
