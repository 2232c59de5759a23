"""Derived figures, default thread counts, compare verdicts and the memory guard at point time."""
from __future__ import annotations

import importlib
import json

import pytest

from blastune.errors import BlastuneError

# `from blastune import sweep` gives the function (a lazy export); the module is what these tests need
sw = importlib.import_module("blastune.sweep")


def _pt(op, threads, median, spread=0.01, dtype="float64", size=1000, flops=2e9):
    return {"op": op, "lib": "numpy", "size": size, "dtype": dtype, "threads": threads, "median_s": median,
            "flops": flops, "spread": spread, "threads_seen": {"/lib/blas.so": threads}}


def test_default_threads_are_powers_of_two_and_the_usable_cores():
    assert sw.default_threads(1) == [1]
    assert sw.default_threads(2) == [1, 2]
    assert sw.default_threads(6) == [1, 2, 4, 6]
    assert sw.default_threads(8) == [1, 2, 4, 8]


def test_annotate_derives_speedup_efficiency_gflops_peak_and_best():
    doc = {"cpu": {"peak_gflops_per_core": 10.0, "usable_cores": 4},
           "libraries": {"numpy": {"blas": {"filepath": "/lib/blas.so"}}},
           "points": [_pt("dot", 2, 0.5), _pt("dot", 1, 1.0), _pt("dot", 4, 0.4),
                      _pt("dot", 1, 1.0, dtype="float32"), _pt("sin", 2, 0.3, flops=None)]}
    sw.annotate(doc)
    d = {(p["op"], p["dtype"], p["threads"]): p for p in doc["points"]}
    assert [p["threads"] for p in doc["points"] if p["op"] == "dot" and p["dtype"] == "float64"] == [1, 2, 4]
    p2 = d[("dot", "float64", 2)]
    assert p2["speedup"] == 2.0 and p2["efficiency"] == 1.0 and p2["gflops"] == pytest.approx(4.0)
    assert p2["peak_pct"] == pytest.approx(100 * 4.0 / (10.0 * 2))
    assert d[("dot", "float64", 4)]["best"] and not p2["best"]
    assert d[("dot", "float64", 4)]["efficiency"] == pytest.approx(2.5 / 4)
    # single precision: the FP64 peak doubled
    assert d[("dot", "float32", 1)]["peak_pct"] == pytest.approx(100 * 2.0 / 20.0)
    assert d[("dot", "float32", 1)]["best"] is False  # nothing to compare it with
    # no 1-thread point and no FLOP count: nothing invented
    s = d[("sin", "float64", 2)]
    assert s["speedup"] is None and s["efficiency"] is None and s["gflops"] is None and s["peak_pct"] is None
    assert p2["threads_ran"] == 2


def test_best_is_the_fewest_threads_within_noise_of_the_fastest():
    doc = {"cpu": {}, "points": [_pt("add", 1, 1.000), _pt("add", 2, 0.995), _pt("add", 4, 0.990),
                                 _pt("dot", 1, 1.0), _pt("dot", 2, 0.6), _pt("dot", 4, 0.59, spread=0.001)]}
    sw.annotate(doc)
    best = {p["op"]: p["threads"] for p in doc["points"] if p["best"]}
    assert best == {"add": 1, "dot": 2}  # add: 1% apart is noise; dot 4 threads buys < 2%


def test_peak_counts_only_usable_cores():
    assert sw._peak({"peak_gflops_per_core": 10.0, "usable_cores": 2}, "float64", 8) == 20.0
    assert sw._peak({"peak_gflops_per_core": None}, "float64", 1) is None


def _write(path, points, fid="abc"):
    path.write_text(json.dumps({"schema": "blastune.sweep/1", "fingerprint": {"id": fid}, "points": points}))


def test_compare_ratios_and_verdicts(tmp_path):
    from blastune.compare import compare

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _write(a, [_pt("dot", 1, 1.0), _pt("dot", 2, 0.5), _pt("inv", 1, 1.0), _pt("det", 1, 1.0)])
    _write(b, [_pt("dot", 1, 1.5), _pt("dot", 2, 0.25), _pt("inv", 1, 1.01), _pt("qr", 1, 1.0)], fid="xyz")
    rows = {(r.op, r.threads): r for r in compare(a, b).rows}
    assert rows[("dot", 1)].ratio == 1.5 and rows[("dot", 1)].verdict == "slower"
    assert rows[("dot", 2)].ratio == 0.5 and rows[("dot", 2)].verdict == "faster"
    assert rows[("inv", 1)].verdict == "same"  # 1% apart with 1% spreads: noise
    assert rows[("det", 1)].verdict == "only in a" and rows[("qr", 1)].verdict == "only in b"
    assert "different machines" in compare(a, b).notes[0]
    (tmp_path / "j.json").write_text(json.dumps({"schema": "blastune.jobs/1", "points": []}))
    with pytest.raises(BlastuneError, match="holds jobs results, expected sweep"):
        compare(a, tmp_path / "j.json")


def test_memory_is_checked_again_just_before_each_point_allocates(monkeypatch, tmp_path):
    """Plenty of memory when planning, too little by the second point: it is refused before its arrays
    exist, and the first point stays saved."""
    import blastune.cpu
    from blastune.ops import OPS

    calls = {"n": 0}

    def shrinking_memory():
        calls["n"] += 1
        return (10**12 if calls["n"] <= 3 else 1000), "MemAvailable"

    built = []
    real_prepare = type(OPS["dot"]).prepare
    monkeypatch.setattr(type(OPS["dot"]), "prepare", lambda self, *a, **k: built.append(self.name) or
                        real_prepare(self, *a, **k))
    monkeypatch.setattr(blastune.cpu, "available_memory", shrinking_memory)
    out = tmp_path / "r.json"
    with pytest.raises(BlastuneError, match="add at size 32 .* needs about"):
        sw.sweep("dot,add", [32], threads=[1], budget=1, min_repeats=3, out=out)
    assert built == ["dot"]  # add's inputs were never built
    doc = json.loads(out.read_text())
    assert doc["status"] == "failed" and [p["op"] for p in doc["points"]] == ["dot"]


def test_result_best_lists_the_fastest_count(tmp_path):
    res = sw.sweep("add", [32], threads=[1, 2], budget=1, min_repeats=3)
    best = res.best()
    assert len(best) == 1 and best[0]["op"] == "add" and best[0]["threads"] in (1, 2)
    assert res.to_dict()["status"] == "complete"


def test_best_for_an_op_blas_does_not_run_is_one_thread_even_when_noise_favours_two():
    doc = {"cpu": {}, "libraries": {},
           "points": [{**_pt("add", 1, 1.00), "blas_op": False}, {**_pt("add", 2, 0.94), "blas_op": False},
                      {**_pt("dot", 1, 1.00), "blas_op": True}, {**_pt("dot", 2, 0.94), "blas_op": True}]}
    sw.annotate(doc)
    best = {(p["op"], p["threads"]) for p in doc["points"] if p["best"]}
    assert best == {("add", 1), ("dot", 2)}
