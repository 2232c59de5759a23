"""``blastune report``: one self-contained HTML page -- parsed for anything it would fetch, and rendered
in a real headless Chromium when one is installed (Debian package ``chromium``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

DATA = Path(__file__).parent / "data" / "docs_0_1_0"
FILES = [
    DATA / "sweep_threads.json",
    DATA / "jobs.json",
    DATA / "sweep_before_openblas.json",
    DATA / "sweep_after_blis.json",
]


class Resources(HTMLParser):
    """Every tag, id and attribute that could make a browser fetch something."""

    def __init__(self):
        super().__init__()
        self.tags: dict[str, int] = {}
        self.ids: list[str] = []
        self.fetches: list[str] = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self._in_style = tag == "style"
        for name, value in attrs:
            value = value or ""
            if name == "id":
                self.ids.append(value)
            if name in (
                "src",
                "srcset",
                "data",
                "poster",
                "action",
                "formaction",
                "background",
            ) or (name in ("href", "xlink:href") and not value.startswith("#")):
                self.fetches.append(f"<{tag} {name}={value[:60]}>")
            if name == "style" and "url(" in value and "url(#" not in value:
                self.fetches.append(f"<{tag} style={value[:60]}>")
            if tag == "meta" and name == "http-equiv":
                self.fetches.append(f"<meta http-equiv={value}>")

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.style += data


def run_cli(*args, cwd=None):
    return subprocess.run(
        ["blastune", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    proc = run_cli("report", "-o", out, "--from", *FILES, "--json")
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout)


def test_report_holds_info_doctor_figures_and_tables(report):
    out, summary = report
    assert summary["schema"] == "blastune.report/1"
    titles = [s["title"] for s in summary["sections"]]
    assert titles[0].startswith("This machine") and titles[1].startswith("Findings")
    assert [t.split(" ")[0] for t in titles[2:6]] == [f.stem for f in FILES]
    assert titles[-1] == "Sweep files compared"
    page = Resources()
    page.feed(out.read_text())
    # threads + sizes figures for the docs example, one jobs figure, one (sizes) figure per 3-size sweep, overlay
    assert page.tags["svg"] == sum(s["figures"] for s in summary["sections"]) == 2 + 1 + 1 + 1 + 1
    assert page.tags["table"] >= 10
    text = out.read_text()
    import blastune

    assert blastune.info().bindings[0].library.vendor in text  # info of this machine
    assert "blas-copies" in text  # doctor's checks
    assert "more threads pay from" in text  # the crossover table


def test_report_loads_nothing_from_outside(report):
    out, _ = report
    page = Resources()
    page.feed(out.read_text())
    assert page.fetches == []
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    assert "img" not in page.tags  # figures are inline SVG
    assert "@import" not in page.style and "url(" not in page.style
    # every reference inside the SVGs points into the page, and no two ids collide across figures
    assert len(page.ids) == len(set(page.ids))
    assert "http://" not in out.read_text().replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    ).replace('xmlns:xlink="http://www.w3.org/1999/xlink"', "")


def test_report_follows_the_output_rule(tmp_path):
    out = tmp_path / "r.html"
    out.write_text("mine")
    proc = run_cli("report", "-o", out, "--no-doctor")
    assert proc.returncode == 2 and out.read_text() == "mine" and "--force" in proc.stderr
    assert proc.stderr.count("\n") == 1
    proc = run_cli("report", "-o", out, "--no-doctor", "--force", FILES[1])
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert run_cli("report", "-o", tmp_path / "r.txt").returncode == 2  # not .html


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # nothing may be fetched: any name lookup fails, so a fetch would show as a broken page
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


@pytest.mark.skipif(
    chromium() is None, reason="no chromium here (Debian: apt-get install chromium)"
)
def test_report_renders_in_a_real_browser(report, tmp_path):
    out, summary = report
    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                chromium(),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--screenshot={shot}",
                "--window-size=1200,2400",
                out.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert shot.exists(), proc.stderr[-2000:]
        dom = subprocess.run(
            [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", out.as_uri()],
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout
    # the browser parsed every figure as SVG and every table
    assert dom.count("<svg") == sum(s["figures"] for s in summary["sections"])
    from PIL import Image

    im = Image.open(shot).convert("L")
    assert im.size == (1200, 2400)
    # something was drawn: the page is not blank, and the first figure's ink is there
    hist = im.histogram()
    dark = sum(hist[:128])
    assert dark > 0.005 * im.size[0] * im.size[1]
