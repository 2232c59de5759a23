"""Derived figures, default thread counts, compare verdicts and the memory guard at point time."""

from __future__ import annotations

import importlib
import json

import pytest

from blastune.errors import BlastuneError

# `from blastune import sweep` gives the function (a lazy export); the module is what these tests need
sw = importlib.import_module("blastune.measure.sweep.entry")


def annotated(data: dict) -> dict:
    """The derived figures of a hand-made document (``points.derive``), in its JSON form."""
    from blastune.documents.sweep import SweepDocument
    from blastune.measure.sweep.points import derive

    return derive(SweepDocument.from_dict(data)).to_dict()


def _pt(op, threads, median, spread=0.01, dtype="float64", size=1000, flops=2e9):
    return {
        "op": op,
        "lib": "numpy",
        "size": size,
        "dtype": dtype,
        "threads": threads,
        "median_s": median,
        "flops": flops,
        "spread": spread,
        "threads_seen": {"/lib/blas.so": threads},
    }


def test_default_threads_are_powers_of_two_and_the_usable_cores():
    assert sw.default_threads(1) == [1]
    assert sw.default_threads(2) == [1, 2]
    assert sw.default_threads(6) == [1, 2, 4, 6]
    assert sw.default_threads(8) == [1, 2, 4, 8]


def test_annotate_derives_speedup_efficiency_gflops_peak_and_best():
    doc = {
        "cpu": {"peak_gflops_per_core": 10.0, "usable_cores": 4},
        "libraries": {"numpy": {"blas": {"filepath": "/lib/blas.so"}}},
        "points": [
            _pt("dot", 2, 0.5),
            _pt("dot", 1, 1.0),
            _pt("dot", 4, 0.4),
            _pt("dot", 1, 1.0, dtype="float32"),
            _pt("sin", 2, 0.3, flops=None),
        ],
    }
    doc = annotated(doc)
    d = {(p["op"], p["dtype"], p["threads"]): p for p in doc["points"]}
    assert [
        p["threads"] for p in doc["points"] if p["op"] == "dot" and p["dtype"] == "float64"
    ] == [1, 2, 4]
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
    assert (
        s["speedup"] is None
        and s["efficiency"] is None
        and s["gflops"] is None
        and s["peak_pct"] is None
    )
    assert p2["threads_ran"] == 2


def test_best_is_the_fewest_threads_within_noise_of_the_fastest():
    doc = {
        "cpu": {},
        "points": [
            _pt("add", 1, 1.000),
            _pt("add", 2, 0.995),
            _pt("add", 4, 0.990),
            _pt("dot", 1, 1.0),
            _pt("dot", 2, 0.6),
            _pt("dot", 4, 0.59, spread=0.001),
        ],
    }
    doc = annotated(doc)
    best = {p["op"]: p["threads"] for p in doc["points"] if p["best"]}
    assert best == {"add": 1, "dot": 2}  # add: 1% apart is noise; dot 4 threads buys < 2%


def test_peak_counts_only_usable_cores():
    from blastune.documents.sweep import SweepCpu
    from blastune.measure.sweep.points import peak_gflops

    assert peak_gflops(SweepCpu(peak_gflops_per_core=10.0, usable_cores=2), "float64", 8) == 20.0
    assert peak_gflops(SweepCpu(peak_gflops_per_core=None), "float64", 1) is None


def _write(path, points, fid="abc"):
    path.write_text(
        json.dumps({"schema": "blastune.sweep/1", "fingerprint": {"id": fid}, "points": points})
    )


def test_memory_is_checked_again_just_before_each_point_allocates(monkeypatch, tmp_path):
    """Plenty of memory when planning, too little by the second point: it is refused before its arrays
    exist, and the first point stays saved."""
    import blastune.facts.cpu
    from blastune.measure.ops import OPS

    calls = {"n": 0}

    def shrinking_memory():
        calls["n"] += 1
        return (10**12 if calls["n"] <= 3 else 1000), "MemAvailable"

    built = []
    real_prepare = type(OPS["dot"]).prepare
    monkeypatch.setattr(
        type(OPS["dot"]),
        "prepare",
        lambda self, *a, **k: built.append(self.name) or real_prepare(self, *a, **k),
    )
    monkeypatch.setattr(blastune.facts.cpu, "available_memory", shrinking_memory)
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
    doc = {
        "cpu": {},
        "libraries": {},
        "points": [
            {**_pt("add", 1, 1.00), "blas_op": False},
            {**_pt("add", 2, 0.94), "blas_op": False},
            {**_pt("dot", 1, 1.00), "blas_op": True},
            {**_pt("dot", 2, 0.94), "blas_op": True},
        ],
    }
    doc = annotated(doc)
    best = {(p["op"], p["threads"]) for p in doc["points"] if p["best"]}
    assert best == {("add", 1), ("dot", 2)}


# --- review fixes ------------------------------------------------------------------------------------


def test_a_count_the_library_did_not_run_is_never_best_and_is_judged_by_what_ran():
    """ATLAS/reference asked for 2 threads run 1: a faster second 1-thread run is noise, not a speed-up."""
    doc = {
        "cpu": {"peak_gflops_per_core": 10.0, "usable_cores": 2},
        "libraries": {"numpy": {"blas": {"filepath": "/lib/blas.so"}}},
        "points": [
            _pt("dot", 1, 0.032),
            dict(_pt("dot", 2, 0.024), threads_seen={"/lib/blas.so": 1}),
            dict(_pt("dot", 4, 0.024), threads_seen={"/lib/blas.so": 1}),
        ],
    }
    doc = annotated(doc)
    d = {p["threads"]: p for p in doc["points"]}
    assert d[1]["best"] and not d[2]["best"] and not d[4]["best"]
    assert d[2]["threads_ran"] == 1 and d[2]["efficiency"] == pytest.approx(
        d[2]["speedup"]
    )  # per thread that ran
    assert d[2]["peak_pct"] == pytest.approx(100 * d[2]["gflops"] / 10.0)  # one core's peak
    assert d[4]["oversubscribed"] is False  # 1 thread ran


MALFORMED = [
    ({"points": [{"op": "dot"}]}, "points[0].lib: missing"),
    ({"points": "x"}, "points: expected a list"),
    (
        {"points": [dict(_pt("dot", 1, 1.0), median_s=None)]},
        "points[0].median_s: expected a number",
    ),
    (
        {"points": [dict(_pt("dot", 1, 1.0), threads="1")]},
        "points[0].threads: expected a whole number",
    ),
    ({"points": [_pt("dot", 0, 1.0)]}, "points[0].threads: expected a whole number from 1"),
    ({"points": [dict(_pt("dot", 1, 1.0), flops="many")]}, "points[0].flops: expected a number"),
    (
        {"points": [dict(_pt("dot", 1, 1.0), threads_seen=[1])]},
        "points[0].threads_seen: expected an object",
    ),
    ({"points": [], "fingerprint": "x"}, "fingerprint: expected an object"),
    ({"points": [], "grid": []}, "grid: expected an object"),
    # issue 11: hand-edited figures used to be found only after the resumed sweep had finished
    ({"points": [dict(_pt("dot", 1, 1.0), iqr_s="x")]}, "points[0].iqr_s: expected a number"),
    (
        {"points": [dict(_pt("dot", 1, 1.0), min_s=-1)]},
        "points[0].min_s: expected a number from 0 to 1e+09",
    ),
    ({"points": [dict(_pt("dot", 1, 1.0), busy="no")]}, "points[0].busy: expected true or false"),
    ({"points": [dict(_pt("dot", 1, 1.0), samples_s=[1, "x"])]}, "samples_s[1]: expected a number"),
    (
        {"points": [dict(_pt("dot", 1, 1.0), wait_pct="high")]},
        "points[0].wait_pct: expected a number",
    ),
    ({"points": [], "status": "done"}, "status: expected one of"),
]


@pytest.mark.parametrize("fields, message", MALFORMED, ids=[m for _, m in MALFORMED])
def test_malformed_sweep_files_are_one_line_for_resume_compare_and_recommend(
    tmp_path, fields, message
):
    """A hand-edited file used to end in 'internal error: KeyError' (exit 1), or -- an edited figure --
    in a traceback after the resumed sweep had measured everything."""
    from typer.testing import CliRunner

    from blastune.cli import app

    bad, good = tmp_path / "bad.json", tmp_path / "good.json"
    bad.write_text(
        json.dumps({"schema": "blastune.sweep/1", "fingerprint": {"id": "abc"}, **fields})
    )
    before = bad.read_bytes()
    _write(good, [_pt("dot", 1, 1.0)])
    for args in (
        [
            "sweep",
            "--op",
            "add",
            "--size",
            "8",
            "--threads",
            "1",
            "--budget",
            "0.2",
            "--out",
            str(bad),
            "--resume",
        ],
        ["compare", str(bad), str(good)],
        ["compare", str(good), str(bad)],
        ["recommend", "--from", str(bad), "--no-save-profile"],
    ):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        assert (
            r.stderr.count("\n") == 1 and "malformed document" in r.stderr and message in r.stderr
        ), (args, r.stderr)
        assert "bad.json" in r.stderr
    assert bad.read_bytes() == before  # refused when loaded: nothing measured, nothing written


def test_resume_refuses_a_malformed_file_before_measuring_anything(tmp_path, monkeypatch):
    """The load-time check: no op is prepared for a file that cannot be continued."""
    from blastune.measure.ops import OPS

    path = tmp_path / "r.json"
    _write(path, [dict(_pt("add", 1, 1.0), iqr_s="x")])
    prepared = []
    monkeypatch.setattr(type(OPS["add"]), "prepare", lambda *a, **k: prepared.append(a))
    with pytest.raises(BlastuneError, match=r"points\[0\]\.iqr_s"):
        sw.sweep("add", [8], [1], budget=0.2, out=path, resume=True)
    assert prepared == []


def test_resume_from_another_machine_says_what_differs(tmp_path):
    path = tmp_path / "r.json"
    _write(path, [_pt("add", 1, 1.0)], fid="elsewhere")
    doc = json.loads(path.read_text())
    doc["fingerprint"].update(cpu_model="Some Other CPU", usable_cores=64)
    path.write_text(json.dumps(doc))
    with pytest.raises(
        BlastuneError, match=r"cpu_model 'Some Other CPU', here .*usable_cores 64, here"
    ):
        sw.sweep("add", [8], [1], budget=0.2, out=path, resume=True)
    assert json.loads(path.read_text()) == doc  # the user's file is untouched


def test_min_repeats_beyond_what_a_point_can_take_is_refused():
    """--min-repeats 10**8 used to be capped at 1000 samples without a word."""
    from blastune.measure.timing import MAX_REPEATS

    with pytest.raises(BlastuneError, match=f"from 1 to {MAX_REPEATS}"):
        sw.sweep("add", [8], [1], min_repeats=MAX_REPEATS + 1)


def test_a_file_holding_numpy_and_scipy_points_shows_which_is_which():
    """--resume with the other --lib keeps both; without a lib column their rows looked identical."""
    from blastune.present.sweep_rows import render_sweep

    pts = [_pt("dot", 1, 1.0), dict(_pt("dot", 1, 0.8), lib="scipy")]
    doc = {
        "grid": {"lib": "scipy"},
        "cpu": {"model": "X", "usable_cores": 2},
        "points": pts,
        "libraries": {
            "numpy": {"blas": {"vendor": "openblas", "version": "0.3.31"}},
            "scipy": {"blas": {"vendor": "openblas", "version": "0.3.30"}},
        },
        "status": "complete",
    }
    from blastune.documents.sweep import SweepDocument

    text = render_sweep(SweepDocument.from_dict(annotated(doc)))
    header = next(line for line in text.splitlines() if line.startswith("op"))
    assert header.split()[:2] == ["op", "lib"]
    assert "numpy calls openblas 0.3.31" in text and "scipy calls openblas 0.3.30" in text
    one_lib = render_sweep(SweepDocument.from_dict({**doc, "points": pts[:1]}))
    assert next(line for line in one_lib.splitlines() if line.startswith("op")).split()[1] == "n"


def _cgroup_tree(root, v2: bool, nested_limit: int, usage: int, inactive: int):
    """A fake /sys/fs/cgroup whose *parent* of our cgroup holds the limit (a Slurm job, a systemd slice)."""
    if v2:
        (root / "cgroup.controllers").parent.mkdir(parents=True, exist_ok=True)
        (root / "cgroup.controllers").write_text("cpu memory\n")
        job, leaf = root / "slurm" / "job_7", root / "slurm" / "job_7" / "step_0"
        leaf.mkdir(parents=True)
        (job / "memory.max").write_text(f"{nested_limit}\n")
        (job / "memory.current").write_text(f"{usage}\n")
        (job / "memory.stat").write_text(f"anon 1\ninactive_file {inactive}\nactive_file 5\n")
        (leaf / "memory.max").write_text("max\n")
        return "0::/slurm/job_7/step_0\n"
    job, leaf = root / "memory" / "slurm" / "job_7", root / "memory" / "slurm" / "job_7" / "step_0"
    leaf.mkdir(parents=True)
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (job / "memory.limit_in_bytes").write_text(f"{nested_limit}\n")
    (job / "memory.usage_in_bytes").write_text(f"{usage}\n")
    (job / "memory.stat").write_text(f"cache 9\ntotal_inactive_file {inactive}\n")
    (leaf / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    return "5:cpu,cpuacct:/slurm/job_7/step_0\n4:memory:/slurm/job_7/step_0\n0::/\n"


@pytest.mark.parametrize("v2", [True, False], ids=["cgroup-v2", "cgroup-v1"])
def test_the_memory_guard_finds_a_limit_set_above_our_own_cgroup(tmp_path, v2):
    """Only the root cgroup's file was read: a job's limit one level up went unseen."""
    from blastune.facts.cpu import available_memory

    gib = 2**30
    proc = _cgroup_tree(tmp_path, v2, nested_limit=4 * gib, usage=3 * gib, inactive=2 * gib)
    room, source = available_memory(proc, tmp_path)
    # 4 GiB limit - (3 GiB used - 2 GiB reclaimable page cache) = 3 GiB, far below this machine's MemAvailable
    assert room == 3 * gib
    assert "job_7" in source and ("memory.max" if v2 else "memory.limit_in_bytes") in source
    # no cgroup line for memory: MemAvailable alone
    assert available_memory("", tmp_path)[1] == "MemAvailable"


def test_the_oversubscription_warning_counts_points_that_really_ran_too_many_threads():
    """It used to be raised from the requested counts, also where the library ran 1 thread (ATLAS)."""
    from blastune.facts.cpu import usable_cores

    over = 2 * usable_cores()[0]
    res = sw.sweep("add", [8], [1, over], budget=0.5, min_repeats=3)
    flagged = [p["threads"] for p in res.points if p["oversubscribed"]]
    ran = {p["threads"]: p["threads_ran"] for p in res.points}
    assert flagged == ([over] if ran[over] in (None, over) else [])
    assert any("1 point(s) ran more threads than" in w for w in res.to_dict()["warnings"]) == bool(
        flagged
    )
