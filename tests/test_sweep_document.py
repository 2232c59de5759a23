"""The typed sweep document, the Python API's behaviour, the budget, the ETA and the bounds flags.

Issue 10: SweepDocument/SweepPoint load 0.1.0 files and today's --json keeps 0.1.0's key set.
Issue 11/13: the Python API speaks Python (force=True); counts through one validator.
Issue 12: one spread, at least 3 repeats; values beyond physical bounds flagged; the budget holds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import blastune
from blastune.cli import app
from blastune.documents.sweep import SweepDocument, SweepPoint
from blastune.errors import BlastuneError
from tests.conftest import child_env

V010 = Path(__file__).parent / "data" / "v0_1_0"
runner = CliRunner()


def _raw(name="sweep.json") -> dict:
    return json.loads((V010 / name).read_text())


# --- the model ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sweep.json", "sweep_stdout.json"])
def test_a_0_1_0_file_loads_and_round_trips_every_key_and_value(name):
    raw = _raw(name)
    doc = SweepDocument.load(V010 / name)
    assert doc.status == "complete" and len(doc.points) == len(raw["points"])
    assert isinstance(doc.points[0], SweepPoint) and doc.points[0].key == (
        "dot",
        "numpy",
        100,
        "float64",
        1,
    )
    assert doc.contention_source is None  # 0.1.0 did not measure it: not invented on load
    back = doc.to_dict()
    assert list(back)[: len(raw)] == list(raw)  # 0.1.0's keys first, in 0.1.0's order
    assert {k: back[k] for k in raw if k != "points"} == {
        k: v for k, v in raw.items() if k != "points"
    }
    for old, new in zip(raw["points"], back["points"]):
        assert {k: new[k] for k in old} == old


def test_todays_sweep_json_has_the_0_1_0_key_set(tmp_path):
    r = runner.invoke(
        app,
        [
            "sweep",
            "--op",
            "dot,inv",
            "--size",
            "16,24",
            "--threads",
            "1,2",
            "--budget",
            "3",
            "--min-repeats",
            "3",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.stderr
    now = json.loads(r.stdout)
    for name in ("sweep.json", "sweep_stdout.json"):
        old = _raw(name)
        assert set(old) <= set(now), set(old) - set(now)
        assert set(old["points"][0]) <= set(now["points"][0]), set(old["points"][0]) - set(
            now["points"][0]
        )
        for key in ("cpu", "grid", "settings", "fingerprint"):
            assert set(old[key]) <= set(now[key]), (key, set(old[key]) - set(now[key]))
    # and the keys added since, for contention and the budget
    assert {"contention_source", "contended_wait_pct", "not_measured", "crossover"} <= set(now)
    assert {"wait_pct", "contended", "samples_wait_pct", "flags"} <= set(now["points"][0])
    SweepDocument.from_dict(now)  # what we print, we can read back


def test_keys_a_newer_version_adds_survive_a_load_and_save():
    raw = _raw()
    raw["future_key"] = {"x": 1}
    raw["points"][0]["future_point_key"] = [1, 2]
    back = SweepDocument.from_dict(raw).to_dict()
    assert back["future_key"] == {"x": 1} and back["points"][0]["future_point_key"] == [1, 2]


def test_a_malformed_field_names_the_file_and_the_field_in_one_line(tmp_path):
    raw = _raw()
    raw["points"][2]["iqr_s"] = "x"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(BlastuneError) as e:
        SweepDocument.load(path)
    assert (
        str(e.value)
        == f"{path}: malformed document: points[2].iqr_s: expected a number from 0 to 1e+09, got 'x'"
    )


# --- the Python API ---------------------------------------------------------------------------------


def test_the_python_api_names_force_true_not_the_cli_option(tmp_path):
    out = tmp_path / "r.json"
    out.write_text("{}")
    with pytest.raises(
        BlastuneError, match=r"already exists: pass force=True to overwrite it or resume=True"
    ):
        blastune.sweep("add", [8], [1], budget=0.2, out=out)
    assert out.read_text() == "{}"


def test_the_python_api_writes_the_same_document_it_returns(tmp_path):
    out = tmp_path / "r.json"
    res = blastune.sweep("add", [8], [1], budget=0.5, min_repeats=3, out=out)
    assert json.loads(out.read_text()) == res.to_dict() and res.document.status == "complete"


def test_counts_take_numpy_integers_refuse_bools_and_share_one_max_threads():
    import numpy as np

    from blastune.core.counts import MAX_THREADS
    from blastune.measure.sweep.plan import make_plan

    plan = make_plan(
        "add", np.int64(8), [np.int32(1), 1025]
    )  # 1025: was refused by sweep's own 1024
    assert plan.sizes == [8] and plan.threads == [1, 1025]
    with pytest.raises(BlastuneError, match=f"from 1 to {MAX_THREADS}"):
        make_plan("add", [8], [MAX_THREADS + 1])
    with pytest.raises(BlastuneError, match="invalid size"):
        make_plan("add", [True], [1])
    with pytest.raises(BlastuneError, match="no dtype given"):
        make_plan("add", [8], [1], dtypes=[""])


def test_the_python_api_ends_on_sigterm_with_the_finished_points():
    code = textwrap.dedent("""
        import json, os, signal, sys
        import blastune
        from blastune.measure.signals import SweepInterrupted
        seen = []
        def hook(event, data):
            if event == "done":
                seen.append(data)
                if len(seen) == 2:
                    os.kill(os.getpid(), signal.SIGTERM)
        try:
            blastune.sweep("add", list(range(8, 400, 8)), [1], budget=60, min_repeats=3, on_point=hook)
        except SweepInterrupted as exc:
            print(json.dumps({"status": exc.result.to_dict()["status"], "points": len(exc.result.points),
                              "exit": exc.exit_status, "handler": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL}))
    """)
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=child_env()
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["status"] == "interrupted" and got["points"] == 2 and got["exit"] == 143
    assert got["handler"] is True  # the host's handler is back


# --- budget and ETA -------------------------------------------------------------------------------------


def test_the_budget_bounds_the_sweep_and_resume_measures_the_rest(tmp_path):
    """-b 60 took 75 s and -b 15 took 27 s: the budget only bounded each point's adaptive repeats."""
    out = tmp_path / "r.json"
    res = blastune.sweep(
        "dot", [200, 240, 280, 320], [1, 2], budget=0.3, min_repeats=5, target_spread=0.001, out=out
    )
    doc = res.document
    assert doc.status == "partial" and doc.not_measured
    assert len(doc.points) + len(doc.not_measured) == 8
    longest = max(p.elapsed_s for p in doc.points)
    assert sum(p.elapsed_s for p in doc.points) <= 0.3 + longest + 0.1  # the budget plus one point
    assert any("budget ran out" in w for w in doc.warnings)
    res = blastune.sweep(
        "dot", [200, 240, 280, 320], [1, 2], budget=30, min_repeats=3, out=out, resume=True
    )
    assert (
        res.document.status == "complete" and len(res.points) == 8 and not res.document.not_measured
    )


def test_eta_comes_from_the_measured_pace_and_never_reads_zero_while_work_remains():
    from blastune.measure.budget import eta_from_pace as eta_s

    assert eta_s(0.5, 0, 10, 60) is None  # nothing measured yet: no figure
    assert eta_s(2.0, 2, 10, 60) == pytest.approx(8.0)  # 1 s per point, 8 left
    assert eta_s(14.0, 2, 10, 15) == pytest.approx(
        8.0
    )  # budget nearly spent: what is left + one point
    assert eta_s(20.0, 19, 20, 15) >= 1.0  # over budget, a point in flight: never 0:00
    assert eta_s(0.01, 1, 100, 60) >= 1.0
    assert eta_s(5.0, 10, 10, 60) == 0.0


# --- spread and physical bounds -----------------------------------------------------------------------


def test_one_spread_needs_three_samples():
    from blastune.measure.timing import MIN_SPREAD_REPEATS, spread

    assert MIN_SPREAD_REPEATS == 3
    assert spread([1.0]) is None and spread([1.0, 1.1]) is None
    assert spread([1.0, 1.0, 1.0]) == 0.0 and spread([1.0, 1.1, 1.2, 1.3]) > 0


def _point(threads, median, **kw):
    return {
        "op": "dot",
        "lib": "numpy",
        "size": 100,
        "dtype": "float64",
        "threads": threads,
        "median_s": median,
        "flops": 2e9,
        "spread": 0.001,
        "repeats": kw.pop("repeats", 5),
        "threads_seen": {"/lib/blas.so": threads},
        **kw,
    }


def test_figures_beyond_physical_bounds_are_flagged_with_their_reason_not_printed_as_facts():
    """'105%' efficiency, '2.05x' on 2 threads and % of peak above 100 were printed as facts."""
    from blastune.present.sweep_rows import render_sweep
    from blastune.measure.sweep.points import derive

    doc = {
        "schema": "blastune.sweep/1",
        "cpu": {"peak_gflops_per_core": 1.0, "usable_cores": 2, "model": "X"},
        "libraries": {"numpy": {"blas": {"filepath": "/lib/blas.so"}}},
        "status": "complete",
        "points": [_point(1, 1.0), _point(2, 0.48, repeats=2, spread=None)],
    }
    model = derive(SweepDocument.from_dict(doc))
    one, two = model.to_dict()["points"]
    assert one["flags"] == {
        "peak_pct": "above the nominal peak: the CPU clock runs above the one /proc/cpuinfo reports"
    }
    assert (
        set(two["flags"]) == {"efficiency", "speedup", "peak_pct"}
        and "noise" in two["flags"]["efficiency"]
    )
    text = render_sweep(model)
    row = next(line for line in text.splitlines() if line.startswith("dot") and " 2 " in line)
    assert (
        "2.08x!" in row
        and "104%!" in row
        and "eff. > 100%" in row
        and "noise" in " ".join(text.split())
    )
    assert "—" in row  # 2 repeats: no spread shown


def test_the_table_shows_wait_and_contended_and_fits_100_columns(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    r = runner.invoke(
        app,
        [
            "sweep",
            "--op",
            "dot,inv",
            "--size",
            "16,64",
            "--threads",
            "1,2",
            "--dtype",
            "complex128",
            "--budget",
            "3",
            "--min-repeats",
            "3",
        ],
    )
    assert r.exit_code == 0, r.stderr
    assert max(len(line) for line in r.stdout.splitlines()) <= 100, r.stdout
    header = next(line for line in r.stdout.splitlines() if line.startswith("op"))
    assert "wait" in header.split() and "crossover: dot" in r.stdout


def test_the_sweep_json_carries_the_crossover_per_op():
    r = runner.invoke(
        app,
        [
            "sweep",
            "--op",
            "dot",
            "--size",
            "16,64",
            "--threads",
            "1,2",
            "--budget",
            "2",
            "--min-repeats",
            "3",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.stderr
    cross = json.loads(r.stdout)["crossover"]
    assert [(c["op"], c["dtype"]) for c in cross] == [("dot", "float64")]
    assert cross[0]["status"] in ("at", "below", "never") and cross[0]["sizes"] == [16, 64]
