"""``blastune sweep`` and ``blastune compare``."""
from __future__ import annotations

import sys
from pathlib import Path

import typer

from blastune.cli import app
from blastune.cli.render import emit_json, parse_int_list, table
from blastune.errors import BlastuneError


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"


def _num(x, spec, suffix=""):
    return "-" if x is None else f"{x:{spec}}{suffix}"


def render_sweep(data: dict, fmt: str = "simple") -> str:
    rows = []
    # a file resumed with the other --lib holds both: without the column their rows look the same
    libs = list(dict.fromkeys(p["lib"] for p in data["points"])) or [data["grid"]["lib"]]
    several_libs = len(libs) > 1
    for p in data["points"]:
        notes = []
        if p.get("unstable"):
            notes.append("unstable")
        if p.get("busy"):
            notes.append(f"busy ({p.get('other_load_cores') or 0:.1f} cores used by others)")
        if p.get("isolated"):
            notes.append("worker")
        if p.get("threads_ran") is not None and p["threads_ran"] != p["threads"]:
            notes.append(f"ran {p['threads_ran']} thread(s)")
        if p.get("oversubscribed"):
            notes.append("oversubscribed")
        gflops = _num(p.get("gflops"), ".1f")
        if p.get("gflops") is not None and p.get("flops_nominal"):
            gflops = "~" + gflops
        rows.append([p["op"], *([p["lib"]] if several_libs else []), p["size"], p["dtype"],
                     f"{p['threads']}{' *' if p.get('best') else ''}",
                     fmt_time(p["median_s"]), fmt_time(p.get("iqr_s")), fmt_time(p.get("min_s")), p.get("repeats", "-"),
                     _num(p.get("spread"), ".1%"), gflops, _num(p.get("speedup"), ".2f", "x"),
                     _num(p.get("efficiency"), ".0%"), _num(p.get("peak_pct"), ".0f", "%"), " ".join(notes)])
    lines = []
    cpu = data.get("cpu") or {}
    for lib in libs:
        blas = (((data.get("libraries") or {}).get(lib) or {}).get("blas")) or {}
        if blas:
            lines.append(f"{lib} calls {blas.get('vendor')} {blas.get('version') or '?'} "
                         f"({blas.get('threading_layer') or '?'}, {blas.get('architecture') or '?'})")
    lines.append(f"{cpu.get('model') or '?'}, {cpu.get('usable_cores') or '?'} usable cores, nominal peak "
                 f"{cpu.get('peak_gflops_per_core') or '?'} GFLOP/s per core (FP64)")
    lines.append(table(rows, ["op", *(["lib"] if several_libs else []), "n", "dtype", "threads", "median", "IQR",
                              "min", "repeats", "spread", "GFLOP/s", "speed-up", "efficiency", "% peak", "notes"],
                       fmt))
    lines.append("* best thread count for that op, size and dtype: the fewest threads within noise of the fastest"
                 " (1 for add, sin, norm_isf: BLAS does not run them).\n"
                 "spread: relative standard error of the median.  ~: nominal FLOP count (see docs/sweep.md).")
    if any(p.get("isolated") for p in data["points"]):
        lines.append(f"worker: measured in a fresh process started with the thread variables set "
                     f"({data.get('isolation') or 'the library reads them only at start-up'}).")
    if data.get("skipped"):
        lines.append("skipped (op cannot take that dtype): " + ", ".join(data["skipped"]))
    for w in data.get("warnings", []):
        lines.append(f"warning: {w}")
    if data.get("status") != "complete":
        lines.append(f"status: {data.get('status')}")
    return "\n".join(lines)


def _parse_spread(text: str) -> float:
    t = str(text).strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise BlastuneError(f"invalid target spread {text!r}: give a fraction (0.02) or a percentage (2%)") from None
    if not 0 < value < 1:
        raise BlastuneError(f"invalid target spread {text!r}: must be above 0 and below 100%")
    return value


def _words(values: list[str] | None) -> list[str]:
    return [part for v in values or [] for part in str(v).replace(" ", "").split(",") if part]


class _Progress:
    """A rich progress bar with ETA on stderr -- only when stderr is a terminal, so --json, pipes and
    log files get clean output.

    The ETA is the smaller of two bounds: the time the budget still allows, and the pace of the points
    finished so far; before the first point finishes only the budget is known.
    """

    def __init__(self, enabled: bool):
        self.bar = None
        self.task = None
        if not enabled:
            return
        import time

        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
        from rich.text import Text

        class EtaColumn(ProgressColumn):
            def render(self, task):
                deadline = task.fields.get("deadline")
                if deadline is None or task.finished:
                    return Text("")
                left = max(0, int(deadline - time.monotonic()))
                return Text(f"ETA {left // 60}:{left % 60:02d}", style="progress.remaining")

        self.clock = time.monotonic
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), EtaColumn(), console=Console(stderr=True), transient=True)

    def __call__(self, event, data):
        if self.bar is None:
            return
        if event == "plan":
            self.start, self.budget, self.total, self.done = self.clock(), data["budget_s"], data["total"], 0
            self.bar.start()
            self.task = self.bar.add_task("sweep", total=data["total"], deadline=self.start + self.budget)
        elif event == "start":
            self.bar.update(self.task, description=f"{data['op']} n={data['size']} {data['dtype']} "
                                                   f"{data['threads']} thr")
        elif event == "done":
            self.done += 1
            now = self.clock()
            pace = (now - self.start) / self.done * (self.total - self.done)
            self.bar.update(self.task, advance=1, deadline=now + min(pace, max(0.0, self.start + self.budget - now)))

    def stop(self):
        if self.bar is not None:
            self.bar.stop()


@app.command("sweep", short_help="Time BLAS/LAPACK ops at each thread count.")
def sweep_command(
    op: list[str] = typer.Option(None, "--op", "-o", metavar="OP[,OP...]", help="Op(s): dot, inv, svd, svdvals, det, solve, cholesky, "
                                 "eigh, qr, add, sin, norm_isf, or all. Repeat or comma-separate. [default: dot]"),
    size: list[str] = typer.Option(None, "--size", "-n", metavar="N[,N...]", help="Matrix order(s) n, e.g. 1000,2000. [default: 1000]"),
    threads: list[str] = typer.Option(None, "--threads", "-t", metavar="T[,T...]", help="Thread counts, e.g. 1,2,4. "
                                      "[default: 1, 2, 4, ... up to the usable cores, and the usable cores]"),
    dtype: list[str] = typer.Option(None, "--dtype", "-d", metavar="DTYPE[,...]", help="float32, float64, complex64, complex128. "
                                    "[default: float64]"),
    lib: str = typer.Option("numpy", "--lib", metavar="numpy|scipy", help="Whose BLAS/LAPACK to call: numpy or scipy."),
    budget: float = typer.Option(60.0, "--budget", "-b", metavar="SECONDS", help="Seconds for the whole sweep, shared among "
                                 "the points (each point still gets --min-repeats)."),
    min_repeats: int = typer.Option(5, "--min-repeats", metavar="N", help="Samples every point takes at least."),
    target_spread: str = typer.Option("2%", "--target-spread", metavar="FRACTION|PCT%", help="Stop repeating a point once the "
                                      "relative standard error of its median is below this (0.02 or 2%)."),
    out: Path = typer.Option(None, "--out", metavar="FILE.json", help="Save results here (JSON, rewritten after every point)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
    resume: bool = typer.Option(False, "--resume", help="Continue an existing --out file: skip its points."),
    csv_path: Path = typer.Option(None, "--csv", metavar="FILE.csv", help="Also write one CSV row per point to this file."),
    plot: Path = typer.Option(None, "--plot", metavar="FILE.png", help="Also draw speed-up vs threads to this PNG (needs matplotlib)."),
    isolate: str = typer.Option("auto", "--isolate", metavar="auto|always|never", help="auto: fresh worker processes only where the "
                                "library cannot change threads at run time; always; never."),
    json_out: bool = typer.Option(False, "--json", help="Print the results document (blastune.sweep/1) on stdout."),
    fmt: str = typer.Option("simple", "--format", "-f", metavar="STYLE", help="tabulate table style: simple, github, grid, ..."),
):
    """Time BLAS/LAPACK ops at each thread count: median, spread, GFLOP/s, speed-up, efficiency."""
    from blastune.measure.ops import parse_ops
    from blastune.measure.sweep.core import sweep
    from blastune.core.files import check_output_path
    from blastune.present.sweep_files import check_plot_available, write_csv, write_plot

    ops = _words(op) or ["dot"]
    parse_ops(ops)  # unknown names fail here, before anything else is looked at
    sizes = parse_int_list(",".join(_words(size)) or "1000", "size")
    thread_list = parse_int_list(",".join(_words(threads)), "thread count") if threads else None
    dtypes = _words(dtype) or ["float64"]
    spread = _parse_spread(target_spread)
    if resume and out is None:
        raise BlastuneError("--resume needs --out FILE: the results file to continue")
    if force and resume:
        raise BlastuneError("give --force (start over) or --resume (continue), not both")
    given = [(name, path.resolve()) for name, path in (("--out", out), ("--csv", csv_path), ("--plot", plot)) if path]
    for i, (name, path) in enumerate(given):
        clash = next((other for other, q in given[:i] if q == path), None)
        if clash:  # the later write would replace the earlier one: the results JSON lost to the CSV
            raise BlastuneError(f"{clash} and {name} name the same file {path}: give each its own file")
    if plot is not None:
        check_plot_available()
        check_output_path(plot, "--plot")
    if csv_path is not None:
        check_output_path(csv_path, "--csv")
    from blastune.cli.render import TABLE_FORMATS

    if fmt not in TABLE_FORMATS:
        raise BlastuneError(f"unknown table format {fmt!r}: choose one of {', '.join(TABLE_FORMATS)}")
    progress = _Progress(sys.stderr.isatty())
    try:
        result = sweep(ops, sizes, thread_list, dtypes, lib, budget=budget, min_repeats=min_repeats,
                       target_spread=spread, out=out, force=force, resume=resume, isolate=isolate,
                       on_point=progress)
    except KeyboardInterrupt:
        progress.stop()
        where = f" in {out}" if out is not None else " (no --out file given)"
        typer.echo("blastune: interrupted: finished points kept" + where + "; thread settings restored", err=True)
        sys.exit(130)
    finally:
        progress.stop()
    data = result.to_dict()
    if csv_path is not None:
        write_csv(data, csv_path)
    if plot is not None:
        write_plot(data, plot)
    if json_out:
        emit_json(data)
    else:
        typer.echo(render_sweep(data, fmt))


def render_compare(cmp, fmt: str = "simple") -> str:
    several_libs = len({r.lib for r in cmp.rows}) > 1  # numpy and scipy rows would look the same
    rows = [[r.op, *([r.lib] if several_libs else []), r.size, r.dtype, r.threads, fmt_time(r.a_median_s),
             fmt_time(r.b_median_s), "-" if r.ratio is None else f"{r.ratio:.3f}", r.verdict] for r in cmp.rows]
    headers = ["op", *(["lib"] if several_libs else []), "n", "dtype", "threads", "a median", "b median", "b / a",
               "b is"]
    lines = [f"a = {cmp.a}", f"b = {cmp.b}", table(rows, headers, fmt),
             "b / a above 1: b is slower. 'same': within twice the larger spread of the two points."]
    lines += [f"note: {n}" for n in cmp.notes]
    return "\n".join(lines)


@app.command("compare", short_help="Compare two sweep results files point by point.")
def compare_command(
    a: Path = typer.Argument(..., help="The baseline sweep results (JSON)."),
    b: Path = typer.Argument(..., help="The sweep results to compare with it."),
    json_out: bool = typer.Option(False, "--json", help="Print the comparison as JSON (blastune.compare/1)."),
    fmt: str = typer.Option("simple", "--format", "-f", metavar="STYLE", help="tabulate table style: simple, github, grid, ..."),
):
    """Compare two sweep results files point by point: the ratio of median times."""
    from blastune.advise.compare import compare

    cmp = compare(a, b)
    if json_out:
        emit_json(cmp.to_dict())
    else:
        typer.echo(render_compare(cmp, fmt))
