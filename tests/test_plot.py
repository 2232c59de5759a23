"""``blastune plot`` and ``sweep --plot``: each figure kind from checked-in documents, checked through
matplotlib's objects (panels, axes, labels, lines, markers), and the files written by the output rule."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from blastune.advise.crossover import crossover_sizes  # noqa: E402
from blastune.documents.sweep import SweepDocument  # noqa: E402
from blastune.documents.jobs import JobsResult  # noqa: E402
from blastune.present.plot import Source, load_sources, make_figure  # noqa: E402

DATA = Path(__file__).parent / "data" / "docs_0_1_0"
THREADS = DATA / "sweep_threads.json"  # --op all --size 500,1000 --threads 1,2 (the docs' example)
SIZES = DATA / "sweep_sizes.json"  # dot,inv,solve,svd at 32..1024, threads 1,2
BEFORE = DATA / "sweep_before_openblas.json"
AFTER = DATA / "sweep_after_blis.json"
JOBS = DATA / "jobs.json"


def panels(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def gid(ax, prefix):
    """The lines plot.py named: labels starting with '_' (kept out of legends)."""
    return [ln for ln in ax.get_lines() if ln.get_label().startswith("_" + prefix)]


def data_lines(ax):
    """The measured lines (one per series; markers are drawn one per point)."""
    return gid(ax, "data:")


def markers(ax):
    return gid(ax, "point") + gid(ax, "hollow")


def overlaps(a, b) -> bool:
    return not (a.x1 <= b.x0 or b.x1 <= a.x0 or a.y1 <= b.y0 or b.y1 <= a.y0)


def assert_legend_clear(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # lays the figure out (constrained layout) as saving it does
    renderer = canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    for ax in panels(fig):
        assert not overlaps(legend, ax.get_window_extent(renderer)), ax.get_title()
    assert legend.y0 >= 0 and legend.x0 >= 0 and legend.x1 <= fig.bbox.x1  # inside the image


def test_threads_figure_small_multiples_per_op():
    doc = SweepDocument.load(THREADS)
    fig = make_figure(load_sources([THREADS]), "auto", "gflops")
    axes = panels(fig)
    with_flops = list(dict.fromkeys(p.op for p in doc.points if p.flops))
    assert [
        ax.get_title().split(" ")[0] for ax in axes
    ] == with_flops  # one panel per op, sin/norm_isf left out
    assert len(axes) == 10
    usable = doc.cpu.usable_cores
    for ax in axes:
        assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
        assert [t for t in ax.get_xticks()] == [1, 2]
        assert len(data_lines(ax)) == 2  # one line per size
        # the ideal stops at the usable cores; a vertical line marks them
        ideal = gid(ax, "ideal")
        if "not BLAS" not in ax.get_title():
            assert ideal and max(max(ln.get_xdata()) for ln in ideal) == usable
        else:
            assert not ideal
        assert [list(ln.get_xdata()) for ln in gid(ax, "usable")] == [[usable, usable]]
    assert axes[0].get_ylabel().startswith("GFLOP/s")
    assert "threads" in axes[-1].get_xlabel()
    title = fig._suptitle.get_text().replace("\n", " ")
    blas = doc.blas()
    assert blas["vendor"] in title and blas["version"] in title and doc.cpu.model in title
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "n=500" in legend and "n=1000" in legend and f"usable cores ({usable})" in legend
    assert_legend_clear(fig)


def test_speedup_metric_draws_every_op_on_one_scale():
    fig = make_figure(load_sources([THREADS]), "threads", "speedup")
    axes = panels(fig)
    assert len(axes) == 12  # sin and norm_isf have a speed-up, no FLOP count
    assert len({ax.get_ylim() for ax in axes}) == 1  # shared y
    assert axes[0].get_ylabel().startswith("speed-up")


def test_sizes_figure_marks_the_crossover():
    doc = SweepDocument.load(SIZES)
    fig = make_figure(load_sources([SIZES]), "auto", "gflops")  # 6 sizes, 2 thread counts: sizes
    axes = panels(fig)
    assert len(axes) == 4
    crossings = {c.op: c for c in crossover_sizes(doc)}
    for ax in axes:
        op = ax.get_title().split("\n")[0]
        assert ax.get_xlabel().startswith("matrix size")
        assert sorted(ax.get_xticks()) == sorted(doc.grid.sizes)
        assert len(data_lines(ax)) == 2  # one line per thread count
        c = crossings[op]
        vlines = [ln.get_xdata()[0] for ln in gid(ax, "crossover")]
        if c.size is None:
            assert "never" in ax.get_title() and not vlines
        else:
            assert vlines == [c.size] and str(c.size) in ax.get_title()
    assert_legend_clear(fig)


def test_several_files_overlay_with_labels():
    sources = load_sources([BEFORE, AFTER], ["OpenBLAS", "BLIS"])
    fig = make_figure(sources, "threads", "gflops")
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == ["dot", "inv", "svd"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(t.startswith("OpenBLAS: openblas 0.3.21") for t in legend)
    assert any(t.startswith("BLIS: blis") for t in legend)
    for ax in axes:
        lines = data_lines(ax)
        assert len(lines) == 6  # 2 files x 3 sizes
        assert len({ln.get_color() for ln in lines}) == 2  # a colour per file
        assert len({str(ln.get_linestyle()) for ln in lines}) == 3  # a line style per size
    assert "OpenBLAS vs BLIS" in fig._suptitle.get_text()
    assert_legend_clear(fig)


def test_contended_unstable_and_oversubscribed_points_are_hollow(tmp_path):
    data = json.loads(THREADS.read_text())
    target = next(
        p for p in data["points"] if p["op"] == "dot" and p["size"] == 500 and p["threads"] == 2
    )
    for p in data["points"]:
        p.update(busy=False, unstable=False, oversubscribed=False)
    target["contended"] = True  # the field sweep writes since 0.2; 0.1.0 files fall back to busy
    fig = make_figure([Source("x", SweepDocument.from_dict(data), "sweep")], "threads", "gflops")
    dot = panels(fig)[0]
    hollow = gid(dot, "hollow")
    assert [(m.get_xdata()[0]) for m in hollow] == [2]
    assert hollow[0].get_markerfacecolor() == "white"
    assert len(markers(dot)) == 4
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(t.startswith("hollow") for t in legend)


def test_jobs_figure_bars_best_naive_and_contended(tmp_path):
    data = json.loads(JOBS.read_text())
    data["results"][1]["contended"] = True
    fig = make_figure([Source("jobs", JobsResult.from_dict(data), "jobs")], "auto")
    (ax,) = panels(fig)
    bars = [p for p in ax.patches if p.get_height() > 0.5]
    assert len(bars) == len(data["results"])
    rates = [r["tasks_per_s"] for r in data["results"]]
    best = max(range(len(rates)), key=lambda i: rates[i])
    widths = [
        b.get_width() for b in sorted(bars, key=lambda b: -b.get_y())
    ]  # top to bottom = file order
    assert widths == pytest.approx(rates)
    ordered = sorted(bars, key=lambda b: -b.get_y())
    assert ordered[best].get_facecolor() != ordered[0].get_facecolor()  # the best stands out
    naive = [i for i, r in enumerate(data["results"]) if r["layout"]["threads"] is None]
    assert naive and all(ordered[i].get_hatch() for i in naive)
    assert all(not ordered[i].get_hatch() for i in range(len(ordered)) if i not in naive)
    assert ordered[1].get_facecolor()[:3] == (1.0, 1.0, 1.0)  # contended: hollow
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].startswith("serial") and "default BLAS threads" in " ".join(labels)
    assert ax.get_xlabel().startswith("tasks per second")
    assert_legend_clear(fig)


def run_cli(*args, cwd=None, env=None):
    return subprocess.run(
        ["blastune", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.mark.parametrize(
    "name, magic", [("f.png", b"\x89PNG"), ("f.svg", b"<?xml"), ("f.pdf", b"%PDF")]
)
def test_plot_command_writes_each_format(tmp_path, name, magic):
    out = tmp_path / name
    proc = run_cli("plot", THREADS, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes().startswith(magic)
    assert "threads, 10 panels" in proc.stdout


def test_plot_command_json_and_labels(tmp_path):
    proc = run_cli(
        "plot",
        BEFORE,
        AFTER,
        "--label",
        "before",
        "--label",
        "after",
        "-o",
        tmp_path / "c.png",
        "--kind",
        "threads",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "blastune.plot/1" and doc["kind"] == "threads"
    assert doc["labels"] == ["before", "after"] and doc["panels"] == ["dot", "inv", "svd"]


def test_plot_output_rule(tmp_path):
    out = tmp_path / "fig.png"
    out.write_bytes(b"mine")
    os.chmod(out, 0o640)
    proc = run_cli("plot", SIZES, "-o", out)
    assert proc.returncode == 2 and out.read_bytes() == b"mine"
    assert proc.stderr.strip().count("\n") == 0 and "--force" in proc.stderr
    proc = run_cli("plot", SIZES, "-o", out, "--force")
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes().startswith(b"\x89PNG")
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # the mode the user gave it is kept
    # a link is written through: the link stays, its target gets the figure
    target = tmp_path / "real.svg"
    target.write_text("old")
    link = tmp_path / "link.svg"
    link.symlink_to(target)
    proc = run_cli("plot", SIZES, "-o", link, "--force")
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and target.read_text().startswith("<?xml")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "args, words",
    [
        (["plot", JOBS, SIZES, "-o", "x.png"], "sweep and jobs files"),
        (["plot", SIZES, "-o", "x.gif"], ".png, .svg or .pdf"),
        (["plot", SIZES, "-o", "x.png", "--metric", "flops"], "gflops or speedup"),
        (["plot", SIZES, "-o", "x.png", "--kind", "jobs"], "jobs files"),
        (["plot", "missing.json", "-o", "x.png"], "no such file"),
        (["plot", SIZES, "-o", "x.png", "-L", "a", "-L", "b"], "at most one per file"),
        (["plot", DATA / "README.md", "-o", "x.png"], "not a blastune results file"),
    ],
)
def test_plot_errors_are_one_line(tmp_path, args, words):
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("blastune: error:") and proc.stderr.count("\n") == 1
    assert words in proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_plot_without_matplotlib_says_how_to_get_it(tmp_path):
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from blastune.cli import main\n"
        f"sys.argv = ['blastune', 'plot', {str(SIZES)!r}, '-o', {str(tmp_path / 'x.png')!r}]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "needs matplotlib" in proc.stderr and "blastune[plot]" in proc.stderr


def test_sweep_plot_draws_the_plot_commands_figure(tmp_path):
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out, png = tmp_path / "s.json", tmp_path / "s.png"
    proc = run_cli(
        "sweep",
        "--op",
        "dot,inv",
        "--size",
        "32,64",
        "--threads",
        "1,2",
        "--budget",
        "2",
        "-o",
        out,
        "--plot",
        png,
        "-q",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    again = tmp_path / "again.png"
    assert run_cli("plot", out, "-o", again).returncode == 0
    # the same module draws both: same kind, same panels, same size in pixels
    assert png.read_bytes()[16:24] == again.read_bytes()[16:24]  # the PNG header's width and height
    # and it follows the output rule: an existing figure is refused before anything is measured
    proc = run_cli(
        "sweep",
        "--op",
        "dot",
        "--size",
        "32",
        "--threads",
        "1",
        "--budget",
        "1",
        "--plot",
        png,
        env=env,
    )
    assert proc.returncode == 2 and "--force" in proc.stderr


def test_crossover_sizes_from_a_real_sweep_and_its_edge_cases():
    data = json.loads(SIZES.read_text())
    got = {c.op: c for c in crossover_sizes(SweepDocument.from_dict(data))}
    assert set(got) == {"dot", "inv", "solve", "svd"}
    for c in got.values():  # the rule, checked against the points themselves
        assert c.sizes == sorted(data["grid"]["sizes"])
        if c.size is not None:
            assert all(c.best_threads[s] > 1 for s in c.sizes if s >= c.size)
            below = [s for s in c.sizes if s < c.size]
            assert c.status == ("at" if below else "below") and (
                not below or c.best_threads[below[-1]] == 1
            )

    def doc(times):
        """dot at each size: (1-thread median, 2-thread median)."""
        pts = []
        for size, (t1, t2) in times.items():
            for threads, t in ((1, t1), (2, t2)):
                pts.append(
                    {
                        "op": "dot",
                        "lib": "numpy",
                        "size": size,
                        "dtype": "float64",
                        "threads": threads,
                        "median_s": t,
                        "spread": 0.001,
                        "blas_op": True,
                    }
                )
        pts.append(
            {
                "op": "add",
                "lib": "numpy",
                "size": 64,
                "dtype": "float64",
                "threads": 1,
                "median_s": 1.0,
                "blas_op": False,
            }
        )
        return SweepDocument.from_dict({"schema": "blastune.sweep/1", "points": pts})

    # a noisy win at 32 below a loss at 64 is no crossover: it starts where threads keep paying
    (c,) = crossover_sizes(doc({32: (1.0, 0.8), 64: (1.0, 1.2), 128: (1.0, 0.6), 256: (1.0, 0.55)}))
    assert (c.status, c.size, c.best_threads) == ("at", 128, {32: 2, 64: 1, 128: 2, 256: 2})
    (c,) = crossover_sizes(doc({32: (1.0, 0.6), 64: (1.0, 0.5)}))
    assert (c.status, c.size) == (
        "below",
        32,
    ) and c.describe() == "at every size measured (n >= 32, the smallest)"
    (c,) = crossover_sizes(doc({32: (1.0, 1.5), 64: (1.0, 0.99)}))  # within 2%: not worth a thread
    assert (c.status, c.size) == ("never", None) and c.describe() == "at no size up to n = 64"
    assert c.to_dict()["best_threads"] == {"32": 1, "64": 1}
