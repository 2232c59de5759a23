"""Figure layout a new user tripped over: top points on the frame, no ideal line in overlays, small
PNGs without --dpi, 20 files breaking the layout (a leaked matplotlib UserWarning)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from blastune.present.plot import PNG_DPI, load_sources, make_figure  # noqa: E402
from tests.test_plot import (
    AFTER,
    BEFORE,
    THREADS,
    assert_legend_clear,  # noqa: E402
    data_lines,
    gid,
    panels,
)

BLASTUNE = shutil.which("blastune") or ""


def highest(ax) -> float:
    tops = [max(ln.get_ydata()) for ln in ax.get_lines() if len(ln.get_ydata())]
    tops += [seg[:, 1].max() for c in ax.collections for seg in c.get_segments() if len(seg)]
    return max(tops)


@pytest.mark.parametrize("kind", ["threads", "sizes"])
@pytest.mark.parametrize("metric", ["gflops", "speedup"])
def test_no_point_sits_on_the_frame(kind, metric):
    fig = make_figure(load_sources([BEFORE, AFTER], ["OpenBLAS", "BLIS"]), kind, metric)
    for ax in panels(fig):
        bottom, top = ax.get_ylim()
        assert top >= highest(ax) + 0.05 * (top - bottom), ax.get_title()


def test_the_overlay_draws_the_ideal_line_per_file():
    fig = make_figure(load_sources([BEFORE, AFTER], ["OpenBLAS", "BLIS"]), "threads", "gflops")
    usable = 2
    for ax in panels(fig):
        ideal = gid(ax, "ideal")
        file_colours = {ln.get_color() for ln in data_lines(ax)}
        assert ideal and {ln.get_color() for ln in ideal} == file_colours, ax.get_title()
        assert max(max(ln.get_xdata()) for ln in ideal) == usable  # only up to the usable cores
        data_width = data_lines(ax)[0].get_linewidth()
        assert all(ln.get_linewidth() < data_width for ln in ideal)  # a guide, not data
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "ideal (linear up to 2 cores)" in legend


def png_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


@pytest.mark.skipif(not BLASTUNE, reason="the blastune console script is not on PATH")
def test_png_default_is_larger_and_dpi_sets_it(tmp_path):
    one = [BLASTUNE, "plot", str(THREADS), "--force"]
    subprocess.run(
        [*one, "-o", str(tmp_path / "a.png")], check=True, capture_output=True, timeout=120
    )
    subprocess.run(
        [*one, "-o", str(tmp_path / "b.png"), "--dpi", "300"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    w, h = png_size(tmp_path / "a.png")
    assert PNG_DPI == 150 and w >= 1800  # 13.6 in x 150 (was 1496 at 110)
    assert png_size(tmp_path / "b.png") == (w * 2, h * 2)
    bad = subprocess.run(
        [*one, "-o", str(tmp_path / "c.png"), "--dpi", "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        bad.returncode == 2
        and bad.stderr.strip()
        == "blastune: error: invalid --dpi 5: must be a whole number from 50 to 600"
    )
    assert not (tmp_path / "c.png").exists()


@pytest.mark.skipif(not BLASTUNE, reason="the blastune console script is not on PATH")
def test_twenty_files_leak_no_warning_and_the_legend_clears_the_panels(tmp_path):
    files = []
    for i in range(20):  # one name in 20 directories: labels become the paths, the longest kind
        (tmp_path / f"run-{i}").mkdir()
        files.append(tmp_path / f"run-{i}" / "results.json")
        files[-1].write_bytes(BEFORE.read_bytes())
    proc = subprocess.run(
        [BLASTUNE, "plot", *map(str, files), "-k", "threads", "-o", str(tmp_path / "f.png")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "always"},
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    fig = make_figure(load_sources(files), "threads", "gflops")
    assert_legend_clear(fig)
    colours = {ln.get_color() for ln in data_lines(panels(fig)[0])}
    assert len(colours) == 20  # no colour for two files
    assert "20 files" in fig._suptitle.get_text()
