"""Sweep results as CSV and as the figure of ``blastune plot`` (matplotlib, an optional extra)."""

from __future__ import annotations

import csv
import io
from pathlib import Path


CSV_FIELDS = (
    "op",
    "lib",
    "impl",
    "size",
    "dtype",
    "threads",
    "isolated",
    "median_s",
    "q1_s",
    "q3_s",
    "iqr_s",
    "min_s",
    "max_s",
    "mean_s",
    "spread",
    "repeats",
    "loops",
    "unstable",
    "busy",
    "other_load_cores",
    "flops",
    "flops_nominal",
    "gflops",
    "speedup",
    "efficiency",
    "peak_pct",
    "best",
    "oversubscribed",
    "memory_bytes",
    # added after 0.1.0 (new columns go last: scripts that index columns keep working)
    "wait_pct",
    "contended",
    "flags",
)


def csv_text(doc) -> str:
    """One row per point of a ``SweepDocument`` (the per-sample times stay in the JSON); ``flags``
    as 'name: reason; ...'."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for p in doc.points:
        row = {k: getattr(p, k) for k in CSV_FIELDS}
        row["flags"] = "; ".join(f"{k}: {v}" for k, v in p.flags.items())
        w.writerow(row)
    return buf.getvalue()


def write_csv(doc, path, force: bool = True) -> None:
    """Write the CSV by the output rule (blastune.core.files): atomic for a regular file, straight
    into a FIFO or /dev/stdout, mode and links kept. ``force=False`` refuses an existing file (the
    CLI checks that before measuring, so by now replacing it is what the user asked for)."""
    from blastune.core.files import save_output

    save_output(path, csv_text(doc), force=force, what="--csv")


def write_plot(doc, path) -> None:
    """The figure ``blastune plot`` draws for this ``SweepDocument``, written by the output rule
    (the caller checked before measuring whether an existing file may be replaced)."""
    from blastune.core.files import write_output
    from blastune.present.plot import Source, figure_format, make_figure, render

    fig = make_figure([Source(Path(str(path)).stem, doc, "sweep")], "auto", "gflops")
    write_output(path, render(fig, figure_format(path)), what="--plot")
