"""``blastune sweep``: options in, ``blastune.sweep()`` (which writes --out), the table (and --csv,
--plot) out -- also for the finished points of a sweep a signal stopped."""

from __future__ import annotations

import sys

import typer

from blastune.cli import app
from blastune.cli.progress import ProgressBar
from blastune.cli.render import WIDE, echo, emit_json, notice, parse_int_list, set_wide, table
from blastune.errors import BlastuneError
from blastune.present.rows import gflops_text

NONE = "—"  # a figure that cannot be given (too few repeats for a spread, nothing measured)


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"


def _num(x, spec, suffix=""):
    return "-" if x is None else f"{x:{spec}}{suffix}"


# a figure beyond a physical bound keeps its value but says it is not a fact: '105%!' and a note
_FLAG_NOTES = {
    "efficiency": "eff. > 100%: noise",
    "speedup": "speed-up > threads: noise",
    "peak_pct": "> nominal peak: clock above nominal",
}


def _flagged(p, name: str, text: str) -> str:
    return text + "!" if name in (p.get("flags") or {}) and text != "-" else text


def _spread(p) -> str:
    from blastune.measure.timing import MIN_SPREAD_REPEATS

    if p.get("spread") is None or (p.get("repeats") or 0) < MIN_SPREAD_REPEATS:
        return NONE
    return f"{p['spread']:.1%}"


def _notes(p) -> list[str]:
    from blastune.documents.sweep import is_disturbed

    notes = []
    if is_disturbed(p.get("contended"), p.get("busy")):
        if p.get("wait_pct") is None and p.get("other_load_cores") is not None:
            notes.append(f"busy ({p['other_load_cores']:.1f} cores used by others)")
        else:
            notes.append("contended")
    if p.get("unstable"):
        notes.append("unstable")
    if p.get("isolated"):
        notes.append("worker")
    if p.get("threads_ran") is not None and p["threads_ran"] != p["threads"]:
        notes.append(f"ran {p['threads_ran']}")
    if p.get("oversubscribed"):
        notes.append("oversubscribed")
    notes += [_FLAG_NOTES[k] for k in (p.get("flags") or {}) if k in _FLAG_NOTES]
    return notes


_SHORT_DTYPE = {"float32": "f32", "float64": "f64", "complex64": "c64", "complex128": "c128"}


def render_sweep(data: dict, fmt: str = "simple", crossover=None) -> str:
    rows = []
    # a file resumed with the other --lib holds both: without the column their rows look the same
    libs = list(dict.fromkeys(p["lib"] for p in data["points"])) or [
        (data.get("grid") or {}).get("lib", "numpy")
    ]
    several_libs = len(libs) > 1
    for p in data["points"]:
        gflops = gflops_text(p.get("gflops"), p.get("flops_nominal"))  # the report's cell too
        wait = NONE if p.get("wait_pct") is None else f"{p['wait_pct']:.0f}%"
        rows.append(
            [
                p["op"],
                *([p["lib"]] if several_libs else []),
                p["size"],
                _SHORT_DTYPE.get(p["dtype"], p["dtype"]),
                f"{p['threads']}{'*' if p.get('best') else ''}",
                fmt_time(p["median_s"]),
                p.get("repeats", "-"),
                _spread(p),
                gflops,
                _flagged(p, "speedup", _num(p.get("speedup"), ".2f", "x")),
                _flagged(p, "efficiency", _num(p.get("efficiency"), ".0%")),
                _flagged(p, "peak_pct", _num(p.get("peak_pct"), ".0f", "%")),
                wait,
                ", ".join(_notes(p)),
            ]
        )
    lines = []
    cpu = data.get("cpu") or {}
    for lib in libs:
        blas = (((data.get("libraries") or {}).get(lib) or {}).get("blas")) or {}
        if blas:
            lines.append(
                f"{lib} calls {blas.get('vendor')} {blas.get('version') or '?'} "
                f"({blas.get('threading_layer') or '?'}, {blas.get('architecture') or '?'})"
            )
    lines.append(
        f"{cpu.get('model') or '?'}, {cpu.get('usable_cores') or '?'} usable cores, nominal peak "
        f"{cpu.get('peak_gflops_per_core') or '?'} GFLOP/s per core (FP64)"
    )
    lines.append(
        table(
            rows,
            [
                "op",
                *(["lib"] if several_libs else []),
                "n",
                "dtype",
                "thr",
                "median",
                "reps",
                "spread",
                "GFLOP/s",
                "speedup",
                "eff.",
                "peak",
                "wait",
                "notes",
            ],
            fmt,
        )
    )
    threshold = data.get("contended_wait_pct")
    source = data.get("contention_source")
    lines.append(
        "thr: threads asked for; *: the best count for that op, size and dtype -- the fewest threads "
        "within noise of the fastest (1 for add, sin, norm_isf: BLAS does not run them)."
    )
    lines.append(
        f"spread: relative standard error of the median ({NONE} below 3 reps). ~: nominal FLOP count. "
        "!: beyond a physical bound, not a fact (see notes). peak: % of the nominal peak."
    )
    if source == "schedstat":
        lines.append(
            f"wait: time the working threads waited for a CPU, in % of the sample time "
            f"(kernel schedstat); contended: above {threshold:g}% that others' CPU "
            "explains."
            if threshold is not None
            else "wait: time the working threads waited for a CPU, in % of the sample time."
        )
    elif source:
        lines.append(
            "contention: judged from the CPU time other processes used (no per-thread schedstat here): "
            "points shorter than 0.5 s cannot be judged."
        )
    if any(
        p.get("threads_ran") is not None and p["threads_ran"] != p["threads"]
        for p in data["points"]
    ):
        lines.append(
            "ran N: the library ran N threads, not the count asked for; its figures are judged by N."
        )
    if any(p.get("isolated") for p in data["points"]):
        lines.append(
            f"worker: measured in a fresh process started with the thread variables set "
            f"({data.get('isolation') or 'the library reads them only at start-up'})."
        )
    for c in crossover or []:
        lines.append(
            f"crossover: {c['op']}{'' if c['dtype'] == 'float64' else ' ' + c['dtype']}"
            f"{' (' + c['lib'] + ')' if several_libs else ''}: more threads pay off "
            f"{'at ' if c['status'] == 'at' else ''}{c['describe']}"
            f"{' (' + c['caveat'] + ')' if c.get('caveat') else ''}"
        )
    if data.get("skipped"):
        lines.append("skipped (op cannot take that dtype): " + ", ".join(data["skipped"]))
    for w in data.get("warnings", []):
        lines.append(f"warning: {w}")
    if data.get("status") != "complete":
        lines.append(f"status: {data.get('status')}")
    return "\n".join(lines)


def crossover_of(data: dict) -> list[dict]:
    """The crossover size per op (blastune.advise.crossover), as plain dicts."""
    from blastune.advise.crossover import crossover_sizes

    return [c.to_dict() for c in crossover_sizes(data)]


def _parse_spread(text: str) -> float:
    t = str(text).strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise BlastuneError(
            f"invalid target spread {text!r}: give a fraction (0.02) or a percentage (2%)"
        ) from None
    if not 0 < value < 1:
        raise BlastuneError(f"invalid target spread {text!r}: must be above 0 and below 100%")
    return value


def _words(values: list[str] | None, default: list[str], what: str) -> list[str]:
    """Comma/space-separated words of a repeatable option; the default only when it was not given
    (``--op ""`` is a mistake, not a request for the default)."""
    if values is None:
        return default
    words = [part for v in values for part in str(v).replace(" ", "").split(",") if part]
    if not words:
        raise BlastuneError(f"no {what} given: {'--' + what} needs a value")
    return words


def _check_outputs(out, csv_path, plot, force: bool, resume: bool, json_out: bool = False) -> None:
    """Every output path, before anything is measured: refused without --force, writable, distinct,
    not owned by another run; --out (rewritten after every point) a regular file."""
    from blastune.core.files import check_distinct, check_output, refuse_stdout_with_json

    given = [("--out", out), ("--csv", csv_path), ("--plot", plot)]
    check_distinct(given)  # the later write would replace the earlier: the results lost to the CSV
    if json_out:
        for name, path in given:
            refuse_stdout_with_json(path, name)
    if out is not None:
        check_output(
            out, force=force, resume=resume, what="--out", resume_option="--resume", rewritten=True
        )
    if csv_path is not None:
        check_output(csv_path, force=force, what="--csv")
    if plot is not None:
        from blastune.present.plot import check_available, figure_format

        check_available("--plot")
        figure_format(plot)
        check_output(plot, force=force, what="--plot")


def _kept(exc, out) -> str:
    """What a stopped sweep kept, in words that match the files on disk."""
    if getattr(exc, "save_error", None):
        return exc.save_error
    if exc.result is None:
        return "nothing was measured or saved"
    if out is None:
        return "finished points kept (no --out file given)"
    n = len(exc.result.points)
    return f"finished points kept in {out}" if n else f"no point had finished ({out} holds none)"


def _write_extras(data: dict, csv_path, plot) -> None:
    """--csv and --plot, for whatever points there are (also after an interrupt)."""
    if csv_path is not None:
        from blastune.present.sweep_files import write_csv

        write_csv(data, csv_path)
    if plot is not None and data["points"]:
        from blastune.present.sweep_files import write_plot

        write_plot(data, plot)  # checked before measuring: replacing it is what --force asked for


@app.command("sweep", short_help="Time BLAS/LAPACK ops at each thread count.")
def sweep_command(
    op: list[str] = typer.Option(
        None,
        "--op",
        metavar="OP[,OP...]",
        help="Op(s): dot, inv, svd, svdvals, det, solve, cholesky, "
        "eigh, qr, add, sin, norm_isf, or all. Repeat or comma-separate. [default: dot]",
    ),
    size: list[str] = typer.Option(
        None,
        "--size",
        "-s",
        metavar="N[,N...]",
        help="Matrix order(s) n, e.g. 1000,2000. [default: 1000]",
    ),
    threads: list[str] = typer.Option(
        None,
        "--threads",
        "-t",
        metavar="T[,T...]",
        help="Thread counts, e.g. 1,2,4. "
        "[default: 1, 2, 4, ... up to the usable cores, and the usable cores]",
    ),
    dtype: list[str] = typer.Option(
        None,
        "--dtype",
        "-d",
        metavar="DTYPE[,...]",
        help="float32, float64, complex64, complex128. [default: float64]",
    ),
    lib: str = typer.Option(
        "numpy", "--lib", metavar="numpy|scipy", help="Whose BLAS/LAPACK to call: numpy or scipy."
    ),
    budget: float = typer.Option(
        60.0,
        "--budget",
        "-b",
        metavar="SECONDS",
        help="Seconds of measuring for the whole sweep, "
        "shared among the points; no point starts after it is spent (the sweep ends within it "
        "plus one point; --resume measures the rest).",
    ),
    min_repeats: int = typer.Option(
        5, "--min-repeats", metavar="N", help="Samples every point takes at least."
    ),
    target_spread: str = typer.Option(
        "2%",
        "--target-spread",
        metavar="FRACTION|PCT%",
        help="Stop repeating a point once the "
        "relative standard error of its median is below this (0.02 or 2%).",
    ),
    out: str = typer.Option(
        None,
        "--out",
        "-o",
        metavar="FILE.json",
        help="Save results here (JSON, rewritten after every point; locked while the sweep runs).",
    ),
    force: bool = typer.Option(
        False, "--force", help="Overwrite existing --out, --csv and --plot files."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an existing --out file: skip its points."
    ),
    csv_path: str = typer.Option(
        None,
        "--csv",
        metavar="FILE.csv",
        help="Also write one CSV row per point to this file "
        "(a FIFO or /dev/stdout is written into).",
    ),
    plot: str = typer.Option(
        None,
        "--plot",
        metavar="FILE.png",
        help="Also draw the sweep to this figure (.png, .svg, .pdf; needs matplotlib).",
    ),
    isolate: str = typer.Option(
        "auto",
        "--isolate",
        metavar="auto|always|never",
        help="auto: fresh worker processes only where the "
        "library cannot change threads at run time; always; never.",
    ),
    json_out: bool = typer.Option(
        False, "--json", help="Print the results document (blastune.sweep/1) on stdout."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    fmt: str = typer.Option(
        "simple",
        "--format",
        "-f",
        metavar="STYLE",
        help="tabulate table style: simple, github, grid, ...",
    ),
    wide: bool = WIDE,
):
    """Time BLAS/LAPACK ops at each thread count: median, spread, GFLOP/s, speed-up, efficiency, and how
    long the threads waited for a CPU (contention)."""
    from blastune.cli.render import check_format
    from blastune.measure.ops import parse_ops
    from blastune.measure.sweep.entry import sweep
    from blastune.core.files import SaveFailed
    from blastune.measure.sweep.signals import SweepInterrupted, stop_on_signals

    set_wide(wide)
    ops = _words(op, ["dot"], "op")
    parse_ops(ops)  # unknown names fail here, before anything else is looked at
    sizes = parse_int_list(",".join(_words(size, ["1000"], "size")), "size")
    thread_list = (
        parse_int_list(",".join(_words(threads, [], "threads")), "thread count")
        if threads is not None
        else None
    )
    dtypes = _words(dtype, ["float64"], "dtype")
    spread = _parse_spread(target_spread)
    check_format(fmt)
    if resume and out is None:
        raise BlastuneError("--resume needs --out FILE: the results file to continue")
    if force and resume:
        raise BlastuneError("give --force (start over) or --resume (continue), not both")
    _check_outputs(out, csv_path, plot, force, resume, json_out)
    progress = ProgressBar(quiet or json_out)
    status, save_error = 0, None
    # the whole command, rendering included: a second signal must not cut the table of the first
    with stop_on_signals():
        try:
            result = sweep(
                ops,
                sizes,
                thread_list,
                dtypes,
                lib,
                budget=budget,
                min_repeats=min_repeats,
                target_spread=spread,
                out=out,
                force=force,
                resume=resume,
                isolate=isolate,
                on_point=progress.sweep,
            )
        except SweepInterrupted as exc:
            progress.stop()
            result, status = exc.result, exc.exit_status
            kept = _kept(exc, out)
            notice(f"interrupted ({exc}): {kept}; thread settings restored", "")
        except SaveFailed as exc:  # a full disk mid-sweep: the table, then where the points are
            progress.stop()
            if exc.result is None:
                raise
            result, status, save_error = exc.result, 2, f"blastune: error: {exc}"
        finally:
            progress.stop()
        if result is not None:
            data = result.to_dict()
            _write_extras(data, csv_path, plot)
            crossover = crossover_of(data)
            if json_out:
                emit_json({**data, "crossover": crossover})
            else:
                echo(render_sweep(data, fmt, crossover))
    if save_error:
        typer.echo(save_error, err=True)
    if status:
        sys.exit(status)
