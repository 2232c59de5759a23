"""Sweep results as CSV and as a scaling plot (matplotlib, an optional extra)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from blastune.errors import BlastuneError
from blastune.core.files import atomic_write_text

CSV_FIELDS = ("op", "lib", "impl", "size", "dtype", "threads", "isolated", "median_s", "q1_s", "q3_s", "iqr_s",
              "min_s", "max_s", "mean_s", "spread", "repeats", "loops", "unstable", "busy", "other_load_cores", "flops", "flops_nominal",
              "gflops", "speedup", "efficiency", "peak_pct", "best", "oversubscribed", "memory_bytes")


def write_csv(data: dict, path) -> None:
    """One row per point (the per-sample times stay in the JSON); written atomically like the JSON."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for p in data["points"]:
        w.writerow({k: p.get(k) for k in CSV_FIELDS})
    atomic_write_text(path, buf.getvalue())


def check_plot_available() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise BlastuneError("--plot needs matplotlib, which is not installed: pip install 'blastune[plot]'") from None


def write_plot(data: dict, path) -> None:
    """Speed-up over 1 thread against threads, one line per (op, size, dtype), with the ideal line."""
    check_plot_available()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple, list[dict]] = {}
    for p in data["points"]:
        if p.get("speedup") is not None:
            groups.setdefault((p["op"], p["size"], p["dtype"]), []).append(p)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    top = 1
    for (op, size, dtype), pts in groups.items():
        pts.sort(key=lambda p: p["threads"])
        xs, ys = [p["threads"] for p in pts], [p["speedup"] for p in pts]
        top = max(top, *xs)
        label = f"{op} n={size}" + (f" {dtype}" if dtype != "float64" else "")
        ax.plot(xs, ys, marker="o", label=label)
    ax.plot([1, top], [1, top], "k--", linewidth=0.8, label="ideal")
    ax.set_xlabel("threads")
    ax.set_ylabel("speed-up over 1 thread (median times)")
    lib = data.get("grid", {}).get("lib", "numpy")
    ax.set_title(f"blastune sweep: {lib} on {data.get('cpu', {}).get('model', '?')}", fontsize=10)
    ax.set_xticks(sorted({p["threads"] for p in data["points"]}))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
