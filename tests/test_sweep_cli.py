"""`blastune sweep` / `blastune compare` end to end: real console-script subprocesses and CliRunner.

Small matrices and tiny budgets: these tests check behaviour (files, exit codes, thread settings),
never speed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from blastune.cli import app
from tests.conftest import REPO, child_env

BLASTUNE = shutil.which("blastune")
needs_script = pytest.mark.skipif(
    BLASTUNE is None, reason="blastune console script not installed (pip install -e .)"
)
runner = CliRunner()
QUICK = ["--budget", "1", "--min-repeats", "3"]
# worker processes start in about a second (numpy, library detection), and that counts against the budget
WORKER_QUICK = ["--budget", "4", "--min-repeats", "3"]
# a test of what is saved, not of the budget: room for both points on a loaded machine (a 1 s
# budget left one unmeasured -- status 'partial' -- at a load average of 10 on 2 cores)
ROOMY = ["--budget", "10", "--min-repeats", "3"]


def cli(*args, env=None, timeout=120):
    return subprocess.run(
        [BLASTUNE, *args], capture_output=True, text=True, timeout=timeout, env=env or child_env()
    )


def load(path):
    return json.loads(path.read_text())


BAD_INPUT = [
    (["--size", "0"], "invalid size 0"),
    (["--size", "-5"], "invalid size '-5'"),
    (["--size", "abc"], "invalid size 'abc'"),
    (["--size", str(10**9)], "needs about"),  # the memory guard, before anything is allocated
    (["--op", "gemv"], "unknown op 'gemv'"),
    (["--dtype", "float16"], "unknown dtype 'float16'"),
    (["--threads", "0"], "invalid thread count 0"),
    (["--op", "norm_isf", "--dtype", "complex128"], "does not take dtype complex128"),
    (["--lib", "mkl"], "unknown library 'mkl'"),
    (["--target-spread", "abc"], "invalid target spread"),
    (["--budget", "0"], "invalid budget"),
    (
        ["--budget", "inf"],
        "invalid budget inf: must be a finite number",
    ),  # was saved as Infinity: not JSON
    (["--min-repeats", "0"], "invalid min repeats"),
    (["--isolate", "sometimes"], "invalid isolate"),
    (["--resume"], "--resume needs --out"),
    (
        ["--op", "add", "--size", "8", "--out", "/proc/nope/r.json"],
        "cannot write --out /proc/nope/r.json",
    ),
    # issue 11: an empty value is a mistake, not a request for the default; ASCII digits only
    (["--size", ""], "no size given"),
    (["--op", ""], "no op given"),
    (["--dtype", ""], "no dtype given"),
    (["--threads", ""], "no threads given"),
    (["--size", "\u0663"], "invalid size '\u0663'"),  # Arabic-Indic three: str.isdigit() says yes
    (["--size", "\u00b3"], "invalid size '\u00b3'"),  # superscript three
    (["--op", "add", "--size", "8", "--out", "/tmp/" + "x" * 300 + ".json"], "ame too long"),
    (
        ["--op", "add", "--size", "8", "--out", "/tmp/blastune-newdir/"],
        "a directory name, not a file name",
    ),
    (
        ["--op", "add", "--size", "8", "--csv", "/proc/nope/r.csv"],
        "cannot write --csv /proc/nope/r.csv",
    ),
    # review fixes
    (["--min-repeats", "100000000"], "from 1 to 1000"),  # was capped at 1000 without a word
    (
        [
            "--op",
            "add",
            "--size",
            "8",
            "--out",
            "/tmp/blastune-same.json",
            "--csv",
            "/tmp/blastune-same.json",
        ],
        "--out and --csv name the same file",
    ),  # the CSV used to replace the JSON
    (["--op", "add", "--size", "8", "--out", f"{REPO}/pyproject.toml/r.json"], "ot a directory"),
]


@needs_script
@pytest.mark.parametrize("args,message", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_exit_2_via_console_script(args, message):
    r = cli("sweep", *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("blastune: error: ") and message in lines[0], (
        r.stderr
    )
    assert "Traceback" not in r.stderr and r.stdout == ""


SAME_WORDS = [
    (["--target-spread", "150%"], dict(target_spread=1.5)),
    (["--threads", ""], dict(threads=[])),
    (["--min-repeats", "0"], dict(min_repeats=0)),
    (["--force", "--resume", "--out", "/tmp/blastune-never-written.json"], dict(force=1, resume=1)),
]


@pytest.mark.parametrize("args,kwargs", SAME_WORDS, ids=[" ".join(a) for a, _ in SAME_WORDS])
def test_the_command_and_the_library_refuse_a_value_in_the_same_words(args, kwargs):
    """The command checked --target-spread, empty lists and --force with --resume itself, in its
    own words, beside blastune.sweep()'s checks: now the library's check is the one."""
    from blastune.errors import BlastuneError
    from blastune.measure.sweep.entry import sweep

    with pytest.raises(BlastuneError) as lib:
        sweep("add", [8], **{"threads": [1], **kwargs})
    threads = [] if "--threads" in args else ["--threads", "1"]
    r = runner.invoke(app, ["sweep", "--op", "add", "--size", "8", *threads, *args])
    assert r.exit_code == 2 and r.stderr.strip() == f"blastune: error: {lib.value}"


@pytest.mark.parametrize("args,message", BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_exit_2_via_clirunner(args, message):
    r = runner.invoke(app, ["sweep", *args])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr


def test_memory_guard_uses_available_memory_before_allocating(monkeypatch, tmp_path):
    import blastune.facts.cpu
    from blastune.measure.ops import OPS

    monkeypatch.setattr(
        blastune.facts.cpu, "available_memory", lambda: (1_000_000, "cgroup memory limit (test)")
    )
    prepared = []
    monkeypatch.setattr(type(OPS["dot"]), "prepare", lambda *a, **k: prepared.append(a))
    out = tmp_path / "r.json"
    r = runner.invoke(app, ["sweep", "--op", "dot", "--size", "200", "--out", str(out)])
    assert r.exit_code == 2
    assert (
        "dot at size 200 (float64) needs about" in r.stderr
        and "cgroup memory limit (test)" in r.stderr
    )
    assert prepared == [] and not out.exists()


def test_sweep_json_table_csv_and_compare(tmp_path):
    env_before = os.environ.get("OPENBLAS_NUM_THREADS")
    a, b, csv = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "a.csv"
    r = runner.invoke(
        app,
        [
            "sweep",
            "--op",
            "dot,add",
            "--size",
            "64",
            "--threads",
            "1",
            *ROOMY,
            "--out",
            str(a),
            "--csv",
            str(csv),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)  # stdout is pure JSON: no progress bar, no table
    assert {k: v for k, v in doc.items() if k != "crossover"} == load(
        a
    )  # --json adds the crossover
    assert doc["schema"] == "blastune.sweep/1" and doc["status"] == "complete"
    assert doc["fingerprint"]["id"] and doc["cpu"]["usable_cores"] >= 1
    assert [(p["op"], p["size"], p["threads"]) for p in doc["points"]] == [
        ("dot", 64, 1),
        ("add", 64, 1),
    ]
    dot = doc["points"][0]
    assert dot["repeats"] >= 3 and dot["min_s"] <= dot["median_s"] and dot["iqr_s"] >= 0
    assert dot["gflops"] == pytest.approx(2 * 64**3 / dot["median_s"] / 1e9)
    assert (
        dot["speedup"] == 1.0 and dot["best"] is False and dot["impl"] == "numpy.dot"
    )  # nothing to beat
    assert list(dot["threads_seen"].values()) == [1]
    assert len(dot["samples_s"]) == dot["repeats"]
    assert dot["other_load_cores"] >= 0 and isinstance(dot["busy"], bool)
    assert csv.read_text().splitlines()[0].startswith("op,lib,impl,size,dtype,threads")
    assert len(csv.read_text().splitlines()) == 3

    r = runner.invoke(
        app, ["sweep", "--op", "dot", "--size", "64", "--threads", "1,2", *QUICK, "--out", str(b)]
    )
    assert r.exit_code == 0, r.stderr
    assert "GFLOP/s" in r.stdout and "speedup" in r.stdout and "wait" in r.stdout  # the table
    best = [p["threads"] for p in load(b)["points"] if p["best"]]
    assert len(best) == 1 and f"{best[0]}*" in r.stdout  # exactly one best thread count, marked

    r = runner.invoke(app, ["compare", str(a), str(b), "--json"])
    assert r.exit_code == 0, r.stderr
    cmp = json.loads(r.stdout)
    rows = {(x["op"], x["threads"]): x for x in cmp["rows"]}
    assert rows[("dot", 1)]["ratio"] == pytest.approx(
        load(b)["points"][0]["median_s"] / dot["median_s"]
    )
    assert rows[("add", 1)]["verdict"] == "only in a"
    r = runner.invoke(app, ["compare", str(a), str(tmp_path / "missing.json")])
    assert r.exit_code == 2 and "no such file" in r.stderr
    assert os.environ.get("OPENBLAS_NUM_THREADS") == env_before


@needs_script
def test_existing_out_is_refused_then_force_and_resume(tmp_path):
    out = tmp_path / "r.json"
    args = ["sweep", "--op", "dot", "--size", "48", *QUICK, "--out", str(out)]
    r = cli(*args, "--threads", "1")
    assert r.returncode == 0, r.stderr
    first = out.read_bytes()
    p1 = load(out)["points"][0]

    r = cli(*args, "--threads", "1")  # neither --force nor --resume: refused, file untouched
    assert r.returncode == 2 and "already exists" in r.stderr and "--force" in r.stderr
    assert out.read_bytes() == first

    r = cli(
        *args, "--threads", "1,2", "--resume"
    )  # keeps the 1-thread point, adds the 2-thread one
    assert r.returncode == 0, r.stderr
    doc = load(out)
    assert [p["threads"] for p in doc["points"]] == [1, 2]
    assert doc["points"][0]["samples_s"] == p1["samples_s"] and doc["resumed"] == 1
    assert doc["points"][1]["speedup"] == pytest.approx(
        p1["median_s"] / doc["points"][1]["median_s"]
    )

    r = cli(*args, "--threads", "2", "--force")  # starts over
    assert r.returncode == 0, r.stderr
    assert [p["threads"] for p in load(out)["points"]] == [2]

    doc = load(out)
    doc["fingerprint"]["id"] = "0000000000000000"
    out.write_text(json.dumps(doc))
    r = cli(*args, "--threads", "1", "--resume")
    assert r.returncode == 2 and "another machine or BLAS" in r.stderr

    out.write_text("{not json")
    r = cli(*args, "--threads", "1", "--resume")
    assert (
        r.returncode == 2
        and "not a blastune results file" in r.stderr
        and "Traceback" not in r.stderr
    )


@needs_script
def test_ctrl_c_keeps_finished_points_and_exits_130(tmp_path):
    out = tmp_path / "r.json"
    # an unreachable spread target: every point runs for its whole share of the budget (~2 s)
    proc = subprocess.Popen(
        [
            BLASTUNE,
            "sweep",
            "--op",
            "dot,add,sin,det",
            "--size",
            "64,96",
            "--threads",
            "1",
            "--budget",
            "16",
            "--target-spread",
            "0.000001",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if len(load(out)["points"]) >= 1:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("no point was saved within 60 s")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    doc = load(out)
    assert doc["status"] == "interrupted" and doc["schema"] == "blastune.sweep/1"
    assert 1 <= len(doc["points"]) < 8
    assert all(p["repeats"] >= 5 and p["median_s"] > 0 for p in doc["points"])


def test_ctrl_c_restores_the_thread_settings(tmp_path):
    """SIGINT arrives mid-sweep in a real process; the library's count must be back to what it was."""
    code = f"""
import json, os, signal, sys
import numpy
import blastune
from blastune.measure.sweep.entry import sweep
blastune.set_threads(2)
before = blastune.get_threads()
during = []
def on_point(event, data):
    if event == "done":
        during.append(dict(blastune.get_threads()))
        os.kill(os.getpid(), signal.SIGINT)
try:
    sweep("dot,add", [64], threads=[1], budget=5, min_repeats=3, out={str(tmp_path / "r.json")!r},
          on_point=on_point)
    print(json.dumps({{"error": "not interrupted"}}))
except KeyboardInterrupt:
    print(json.dumps({{"before": before, "during": during, "after": blastune.get_threads()}}))
"""
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(threads=2),
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert set(res["before"].values()) == {2}
    assert set(res["during"][0].values()) == {1}
    # scipy's own OpenBLAS is loaded during the sweep (by the BLAS detection): it must be back at 2 too
    assert {k: res["after"][k] for k in res["before"]} == res["before"] and set(
        res["after"].values()
    ) == {2}
    doc = load(tmp_path / "r.json")
    assert doc["status"] == "interrupted" and len(doc["points"]) == 1


def test_isolated_workers_set_threads_before_numpy_starts(tmp_path):
    """--isolate always: each thread count in a fresh process; the library there reports that count."""
    out = tmp_path / "r.json"
    r = runner.invoke(
        app,
        [
            "sweep",
            "--op",
            "dot",
            "--size",
            "48",
            "--threads",
            "1,2",
            *WORKER_QUICK,
            "--isolate",
            "always",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.stderr
    doc = load(out)
    assert [p["threads"] for p in doc["points"]] == [1, 2]
    for p in doc["points"]:
        assert p["isolated"] is True
        assert set(p["threads_seen"].values()) == {p["threads"]}
    assert "worker" in r.stdout


@pytest.mark.matrix
@pytest.mark.parametrize(
    "variant,vendor,ran_at_2", [("blis-pthread", "blis", 2), ("atlas", "atlas", 1)]
)
def test_start_up_only_libraries_are_swept_in_workers_under_the_real_matrix(
    tmp_path, variant, vendor, ran_at_2
):
    """Debian's BLIS reads its count at start-up: one worker per count, and it runs that count.
    ATLAS's count is fixed at build: the worker runs anyway and the row says what really ran."""
    from tests.conftest import MATRIX_PYTHON, WITH_BLAS

    if not (WITH_BLAS.exists() and MATRIX_PYTHON.exists()):
        pytest.skip(
            "BLAS matrix not installed at /tmp/blasmatrix (run ../shared/blas-matrix/setup.sh)"
        )
    out = tmp_path / f"{variant}.json"
    r = subprocess.run(
        [
            str(WITH_BLAS),
            variant,
            str(MATRIX_PYTHON),
            "-m",
            "blastune",
            "sweep",
            "--op",
            "dot",
            "--size",
            "48",
            "--threads",
            "1,2",
            *WORKER_QUICK,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
    )
    assert r.returncode == 0, r.stderr
    doc = load(out)
    assert doc["libraries"]["numpy"]["blas"]["vendor"] == vendor
    assert doc["isolation"]
    assert [(p["threads"], p["isolated"], p["threads_ran"]) for p in doc["points"]] == [
        (1, True, 1),
        (2, True, ran_at_2),
    ]
    assert ("ran 1" in r.stdout) == (ran_at_2 == 1)
    if ran_at_2 == 1:  # a count the library did not run is never marked best, whatever the noise
        assert [p["threads"] for p in doc["points"] if p["best"]] == [1]


def test_all_ops_skip_the_dtypes_an_op_cannot_take():
    r = runner.invoke(
        app,
        [
            "sweep",
            "--op",
            "all",
            "--size",
            "16",
            "--threads",
            "1",
            "--dtype",
            "complex64",
            "--budget",
            "2",
            "--min-repeats",
            "3",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    from blastune.measure.ops import OPS

    assert [p["op"] for p in doc["points"]] == [name for name in OPS if name != "norm_isf"]
    assert doc["skipped"] == ["norm_isf complex64"]
    assert all(p["dtype"] == "complex64" for p in doc["points"])


def test_plot_is_written_or_refused_in_one_line(tmp_path):
    png = tmp_path / "s.png"
    r = runner.invoke(
        app,
        ["sweep", "--op", "dot", "--size", "32", "--threads", "1,2", *QUICK, "--plot", str(png)],
    )
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert r.exit_code == 2 and "needs matplotlib" in r.stderr
        return
    assert r.exit_code == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_script
def test_a_count_the_library_caps_is_noted_in_the_table_not_warned_with_a_source_line(tmp_path):
    """OpenBLAS caps run-time counts (64 in the wheels): the limiter's NotControllableWarning, with its
    'sweep.py:492:' source line, used to reach the user's terminal although the table says it all."""
    out = tmp_path / "r.json"
    r = cli(
        "sweep",
        "--op",
        "add",
        "--size",
        "8",
        "--threads",
        "1,1000",
        *WORKER_QUICK,
        "--out",
        str(out),
        env=child_env(),
    )
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr and "sweep.py" not in r.stderr, r.stderr
    p = next(p for p in load(out)["points"] if p["threads"] == 1000)
    assert p["threads_ran"] is not None and p["threads_ran"] < 1000
    assert f"ran {p['threads_ran']}" in r.stdout and "ran N: the library ran N threads" in r.stdout


@needs_script
def test_out_below_a_regular_file_is_one_line_before_measuring(tmp_path):
    (tmp_path / "notadir").write_text("x")
    r = cli("sweep", "--op", "add", "--size", "8", "--out", str(tmp_path / "notadir" / "r.json"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "notadir" in r.stderr and "ot a directory" in r.stderr  # was: "File exists"
