"""``blastune sweep``: options in, ``blastune.sweep()`` (which writes --out), the table (and --csv,
--plot) out -- also for the finished points of a sweep a signal stopped."""

from __future__ import annotations

import sys

import typer

from blastune.cli import app, fail
from blastune.cli.progress import ProgressBar
from blastune.cli.render import (
    FORMAT,
    WIDE,
    check_format,
    echo,
    emit_json,
    force_option,
    json_option,
    notice,
    out_option,
    quiet_option,
    words,
)
from blastune.core.counts import parse_count
from blastune.errors import BlastuneError
from blastune.present.sweep_rows import render_sweep


def _parse_spread(text: str) -> float:
    """'2%' or '0.02' -> 0.02 (``blastune.sweep()`` checks the range)."""
    t = str(text).strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise BlastuneError(
            f"invalid target spread {text!r}: give a fraction (0.02) or a percentage (2%)"
        ) from None


def _counts(values: list[str], what: str) -> list[int]:
    """(``--size ""`` gives none: the library says what is missing -- an empty value is a
    mistake, not a request for the default)."""
    return [parse_count(word, what) for word in words(values)]


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
    n = len(exc.result.document.points)
    return f"finished points kept in {out}" if n else f"no point had finished ({out} holds none)"


def _write_extras(doc, csv_path, plot) -> None:
    """--csv and --plot, for whatever points there are (also after an interrupt)."""
    if csv_path is not None:
        from blastune.present.sweep_files import write_csv

        write_csv(doc, csv_path)
    if plot is not None and doc.points:
        from blastune.present.sweep_files import write_plot

        write_plot(doc, plot)  # checked before measuring: replacing it is what --force asked for


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
    lib: str = typer.Option("numpy", "--lib", help="Whose BLAS/LAPACK to call: numpy or scipy."),
    budget: float = typer.Option(
        60.0,
        "--budget",
        "-b",
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
    out: str = out_option(
        "Save results here (JSON, rewritten after every point; locked while the sweep runs).",
        "FILE.json",
    ),
    force: bool = force_option("Overwrite existing --out, --csv and --plot files."),
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
    json_out: bool = json_option("Print the results document (blastune.sweep/1) on stdout."),
    quiet: bool = quiet_option("No progress bar."),
    fmt: str = FORMAT,
    wide: bool = WIDE,
):
    """Time BLAS/LAPACK ops at each thread count: median, spread, GFLOP/s, speed-up, efficiency, and
    how long the threads waited for a CPU (contention)."""
    from blastune.measure.sweep.entry import sweep
    from blastune.core.files import SaveFailed
    from blastune.measure.signals import SweepInterrupted, stop_on_signals

    # text to values here; every value is checked once, by blastune.sweep() (Python calls it too)
    grid = (
        "dot" if op is None else op,
        [1000] if size is None else _counts(size, "size"),
        None if threads is None else _counts(threads, "thread count"),
        ("float64",) if dtype is None else dtype,
        lib,
    )
    spread = _parse_spread(target_spread)
    check_format(fmt)
    if resume and out is None:
        raise BlastuneError("--resume needs --out FILE: the results file to continue")
    _check_outputs(out, csv_path, plot, force, resume, json_out)
    progress = ProgressBar(quiet or json_out)
    status, save_error = 0, None
    # the whole command, rendering included: a second signal must not cut the table of the first
    with stop_on_signals(SweepInterrupted):
        try:
            result = sweep(
                *grid,
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
            if exc.result is None:
                raise
            result, save_error = exc.result, str(exc)
        finally:
            progress.stop()
        if result is not None:
            from blastune.advise.crossover import crossover_sizes

            doc = result.document
            _write_extras(doc, csv_path, plot)
            crossovers = crossover_sizes(doc)
            if json_out:
                emit_json({**doc.to_dict(), "crossover": [c.to_dict() for c in crossovers]})
            else:
                echo(render_sweep(doc, fmt, crossovers, wide))
    if save_error:
        fail(save_error)
    if status:
        sys.exit(status)
