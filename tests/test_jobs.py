"""blastune jobs: layouts run in real worker threads/processes, with real functions, and bad input fails in one line.

Every run is tiny (a handful of tasks, small matrices). BLAS threads are pinned to 1 through the
environment unless a test is about the thread count itself.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from blastune.cli import app
from blastune.errors import BlastuneError
from blastune.measure.jobs.entry import (
    Layout,
    default_layouts,
    layouts_from_lists,
    parse_layouts,
    run_jobs,
)
from blastune.measure.workloads import make_workload
from tests.conftest import child_env, needs_matrix, run_python
from tests.quiet import quietly

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Workers import tests/jobfuncs.py; profiles go to a private cache; BLAS pinned to 1 thread."""
    monkeypatch.syspath_prepend(str(TESTS))  # spawned workers inherit sys.path
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        monkeypatch.setenv(name, "1")


def _env(tmp_path, threads=1, **extra):
    env = child_env(extra, threads=threads)
    env["PYTHONPATH"] = str(TESTS) + os.pathsep + env["PYTHONPATH"]
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return env


def _blastune(args, tmp_path, threads=1, cwd=None, **extra):
    return subprocess.run(
        ["blastune", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(tmp_path, threads, **extra),
        cwd=cwd or tmp_path,
    )


def _log(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


# --- layouts ----------------------------------------------------------------------------------------


def test_parse_layouts_spellings():
    got = parse_layouts("serial, serial:1x2, thread:2x1, process:2, process:4xdefault")
    assert got == [
        Layout("serial", 1, 1),
        Layout("serial", 1, 2),
        Layout("thread", 2, 1),
        Layout("process", 2, 1),
        Layout("process", 4, None),
    ]
    assert [lay.spec for lay in got][-1] == "process:4xdefault"


@pytest.mark.parametrize(
    "text", ["pool:2x1", "process:0x1", "process:2x0", "process:axb", "serial:2x1", ","]
)
def test_parse_layouts_rejects(text):
    with pytest.raises(BlastuneError):
        parse_layouts(text)


def test_default_layouts_fill_the_cores_and_add_naive():
    blas = make_workload(op="dot", size=50)
    two = default_layouts(blas, 2)
    assert [lay.spec for lay in two] == [
        "serial:1x1",
        "serial:1x2",
        "thread:2x1",
        "process:2x1",
        "process:2xdefault",
    ]
    eight = default_layouts(blas, 8)
    assert all(lay.workers * lay.threads <= 8 for lay in eight if lay.threads)
    assert Layout("process", 4, 2) in eight and Layout("process", 8, 1) in eight
    # a workload that never calls BLAS: thread counts cannot matter, no naive layout
    py = default_layouts(make_workload(workload="python"), 2)
    assert [lay.spec for lay in py] == ["serial:1x1", "thread:2x1", "process:2x1"]


def test_layouts_from_lists():
    got = layouts_from_lists([1, 2], [1, None], ["process"])
    assert got == [
        Layout("serial", 1, 1),
        Layout("serial", 1, None),
        Layout("process", 2, 1),
        Layout("process", 2, None),
    ]


# --- real runs ---------------------------------------------------------------------------------------


def test_process_workers_get_their_blas_limit(tmp_path):
    """Each process layout runs in its own warmed-up workers, limited by worker_initializer; the naive one
    keeps the environment's default (1 here). Nothing runs in blastune's own process: the serial
    baseline has a process of its own too (a crashing task must not take blastune down)."""
    log = tmp_path / "log.jsonl"
    os.environ["JOBFUNCS_LOG"] = str(log)
    try:
        res = run_jobs(
            func="jobfuncs:record",
            tasks=6,
            repeats=1,
            layouts=[Layout("process", 1, 2), Layout("process", 2, 1), Layout("process", 2, None)],
        )
    finally:
        del os.environ["JOBFUNCS_LOG"]
    lines = _log(log)
    assert os.getpid() not in {x["pid"] for x in lines}
    assert (
        len(lines) == (1 + 6) + 3 * (6 + 1) + 2
    )  # serial: warm-up + 6; workers: 6 per layout + warm-ups
    by_threads = {}
    for x in lines:
        by_threads.setdefault(x["threads"], set()).add(x["pid"])
    assert len(by_threads[2]) == 1  # process:1x2 -> one worker at 2 threads
    assert len(by_threads[1]) == 5  # the serial baseline, process:2x1, the naive 2
    specs = [r.layout.spec for r in res.results]
    assert specs == ["serial:1x1", "process:1x2", "process:2x1", "process:2xdefault"]
    assert [r.threads_seen for r in res.results] == [1, 2, 1, 1]
    for r in res.results:
        assert len(r.walls) == 1 and r.wall_s > 0 and r.tasks_per_s == pytest.approx(6 / r.wall_s)
        assert r.cpu_s is not None and r.cpu_s > 0
        assert r.spread is None  # one batch: no spread, never "0%"
    assert res.results[0].speedup == 1.0 and res.results[0].cpu_efficiency == 1.0


def test_thread_layout_runs_in_one_process_of_its_own(tmp_path):
    log = tmp_path / "log.jsonl"
    os.environ["JOBFUNCS_LOG"] = str(log)
    try:
        res = run_jobs(func="jobfuncs:record", tasks=5, repeats=2, layouts=[Layout("thread", 2, 1)])
    finally:
        del os.environ["JOBFUNCS_LOG"]
    lines = _log(log)
    pids = {x["pid"] for x in lines}
    assert (
        len(pids) == 2 and os.getpid() not in pids
    )  # serial and thread:2x1, each in its own process
    assert [len(r.walls) for r in res.results] == [2, 2]
    assert [x["task"] for x in lines].count(4) == 4  # serial + thread, 2 repeats each


@pytest.mark.parametrize("kind", ["python", "numpy"])
def test_seed_workloads_run_under_all_three_executors(kind):
    res = run_jobs(workload=kind, size=20_000, tasks=4, repeats=1)
    assert [r.layout.executor for r in res.results] == ["serial", "thread", "process"]
    assert res.workload.uses_blas is False
    d = res.to_dict()
    assert d["schema"] == "blastune.jobs/1" and d["tasks"] == 4
    assert d["best"] in [r["layout"]["spec"] for r in d["results"]]
    assert d["fingerprint"]["id"]


def test_calibrated_task_count():
    res = run_jobs(func="jobfuncs:square", tasks=None, repeats=1, layouts=[], target_seconds=0.05)
    assert res.tasks >= 8
    assert [r.layout.spec for r in res.results] == ["serial:1x1"]


def test_user_function_error_is_one_line():
    with pytest.raises(BlastuneError, match=r"task 3 raised ValueError: beam 3 is corrupt"):
        run_jobs(func="jobfuncs:boom", tasks=5, repeats=1, layouts=[Layout("process", 2, 1)])


def test_a_huge_error_message_is_cut_to_one_readable_line():
    with pytest.raises(BlastuneError) as err:
        run_jobs(func="jobfuncs:long_error", tasks=2, repeats=1, layouts=[Layout("process", 2, 1)])
    assert str(err.value).startswith("task 0 raised ValueError: xxx") and str(err.value).endswith(
        "..."
    )
    assert len(str(err.value)) < 300


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"func": "nosuchmod:f"}, "cannot import 'nosuchmod'"),
        ({"func": "jobfuncs:NOT_CALLABLE"}, "is a int, not a function"),
        ({"func": "jobfuncs:missing"}, "has no attribute 'missing'"),
        ({"func": "jobfuncs"}, "use package.module:function"),
        ({"func": "os:getcwd"}, "cannot be called with the task index"),
        ({"workload": "fortran"}, "unknown workload"),
        ({"op": "nosuch"}, "unknown op"),
        ({"op": "dot", "workload": "python"}, "only one of"),
        ({"func": "jobfuncs:square", "size": 3}, "--size does not apply"),
    ],
)
def test_bad_workloads(kw, msg):
    with pytest.raises(BlastuneError, match=msg):
        make_workload(**kw)


def test_tasks_must_be_positive():
    with pytest.raises(
        BlastuneError, match="invalid number of tasks 0: must be a whole number from 1"
    ):
        run_jobs(func="jobfuncs:square", tasks=0)


# --- the command line ---------------------------------------------------------------------------------

BAD_ARGS = [
    (["jobs", "--func", "nosuchmod:f"], "cannot import 'nosuchmod'"),
    (["jobs", "--func", "jobfuncs:NOT_CALLABLE"], "not a function"),
    (["jobs", "--tasks", "0"], "--tasks 0"),
    (["jobs", "--workload", "fortran"], "unknown workload"),
    (["jobs", "--layouts", "process:two"], "invalid layout"),
    (["jobs", "--layouts", "serial", "--workers", "2"], "not both"),
    (["jobs", "--threads", "0"], "must be a whole number from 1"),
    (["jobs", "--executor", "fiber", "--workers", "2"], "invalid --executor"),
    (["jobs", "--format", "nope"], "unknown table format"),
    (["jobs", "--tasks", "x"], "--tasks"),
    # review fixes: each of these used to exit 1 with an internal error, 3, or a traceback
    (
        ["jobs", "--op", "dot", "--size", "200000"],
        "fewer --layouts",
    ),  # the memory guard, before allocating
    (["jobs", "--workload", "numpy", "--size", str(10**13)], "is available"),
    (
        ["jobs", "--func", "jobfuncs:square", "--layouts", "process:100000x1"],
        "(100000 of them processes)",
    ),
    (
        ["jobs", "--func", "jobfuncs:exits", "--tasks", "2", "-r", "1"],
        "task 0 raised SystemExit: 3",
    ),
    (
        [
            "jobs",
            "--func",
            "jobfuncs:fails_in_workers",
            "--tasks",
            "2",
            "-r",
            "1",
            "--layouts",
            "process:2x1",
        ],
        "layout process:2x1: task 0 (the warm-up in a worker process) raised RuntimeError: no database connection",
    ),
    (
        ["jobs", "--func", "raises_on_import:f"],
        "importing 'raises_on_import' failed: RuntimeError: needs a GPU",
    ),
    (
        ["jobs", "--workload", "python", "--out", "notadir/jobs.json"],
        "notadir/jobs.json: Not a directory",
    ),
    (["jobs", "--func", "exits_on_import:f"], "importing 'exits_on_import' called sys.exit(0)"),
]


def _bad_fixtures(tmp_path):
    (tmp_path / "raises_on_import.py").write_text("raise RuntimeError('needs a GPU')\n")
    (tmp_path / "notadir").write_text("a file, not a directory")
    (tmp_path / "exits_on_import.py").write_text(
        "import sys\ndef f(i):\n    return i\nsys.exit(0)\n"
    )


@pytest.mark.parametrize("args, msg", BAD_ARGS)
def test_cli_bad_input_one_line_exit_2_installed_script(args, msg, tmp_path):
    _bad_fixtures(tmp_path)
    p = _blastune(args, tmp_path)
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("blastune: error: ")
    assert msg in p.stderr and "Traceback" not in p.stderr
    assert p.stdout == ""


@pytest.mark.parametrize("args, msg", BAD_ARGS)
def test_cli_bad_input_one_line_exit_2_clirunner(args, msg, tmp_path, monkeypatch):
    _bad_fixtures(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", list(__import__("sys").path))  # --func puts the cwd on it
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and msg in r.stderr and "Traceback" not in r.stderr


def test_cli_task_failure_in_worker_is_one_line(tmp_path):
    p = _blastune(
        ["jobs", "--func", "jobfuncs:boom", "--tasks", "5", "--layouts", "process:2x1", "-r", "1"],
        tmp_path,
    )
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "blastune: error: task 3 raised ValueError: beam 3 is corrupt"
    ]


def test_cli_table_json_and_out(tmp_path):
    out = tmp_path / "jobs.json"
    p = _blastune(
        [
            "jobs",
            "--func",
            "jobfuncs:small_dot",
            "--tasks",
            "8",
            "--layouts",
            "thread:2x1,process:2x1",
            "-r",
            "1",
            "--out",
            str(out),
            "--no-save-profile",
        ],
        tmp_path,
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("8 tasks of jobfuncs:small_dot(i)")
    assert any(line.startswith("serial ") for line in lines)
    assert any(line.startswith("2 threads ") for line in lines)
    assert any(line.startswith("2 processes ") for line in lines)
    assert "fastest: " in p.stdout and f"saved: {out}" in p.stdout
    doc = json.loads(out.read_text())
    assert doc["schema"] == "blastune.jobs/1" and len(doc["results"]) == 3
    # never overwritten without --force
    before = out.read_text()
    p2 = _blastune(
        [
            "jobs",
            "--func",
            "jobfuncs:square",
            "--tasks",
            "4",
            "--layouts",
            "serial",
            "--out",
            str(out),
        ],
        tmp_path,
    )
    assert p2.returncode == 2 and "--force" in p2.stderr and out.read_text() == before
    p3 = _blastune(
        [
            "jobs",
            "--func",
            "jobfuncs:square",
            "--tasks",
            "4",
            "--layouts",
            "serial",
            "--out",
            str(out),
            "--force",
            "--json",
        ],
        tmp_path,
    )
    assert p3.returncode == 0, p3.stderr
    printed = json.loads(p3.stdout)
    assert printed["saved_to"] == str(out) and json.loads(out.read_text())["tasks"] == 4


def test_cli_func_from_current_directory(tmp_path):
    (tmp_path / "beams.py").write_text("def analyse(i):\n    return sum(range(1000 + i))\n")
    p = _blastune(
        [
            "jobs",
            "--func",
            "beams:analyse",
            "--tasks",
            "4",
            "--layouts",
            "process:2x1",
            "-r",
            "1",
            "--json",
        ],
        tmp_path,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["workload"]["name"] == "beams:analyse"


def test_cli_naive_layout_runs_library_default_threads(tmp_path):
    """About threads: no thread variables set, so the naive workers run the library default."""
    from blastune.facts.cpu import cpu_info

    cores = cpu_info().usable_cores
    p = _blastune(
        [
            "jobs",
            "--op",
            "dot",
            "--size",
            "32",
            "--tasks",
            "8",
            "--layouts",
            "process:2xdefault",
            "-r",
            "1",
            "--json",
            "--no-save-profile",
        ],
        tmp_path,
        threads=None,
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    naive = doc["results"][-1]
    assert naive["layout"]["threads"] is None and naive["threads_seen"] == cores
    assert doc["default_threads"] == cores
    if 2 * cores > cores:
        assert any("oversubscribed" in n for n in naive["notes"])


def _profile_job_counts(profile: dict) -> set[str]:
    """The job counts a saved profile holds entries for (schema 1: top-level entries; 2: per workload)."""
    if "workloads" in profile:
        return {k for w in profile["workloads"].values() for k in w.get("entries", {})}
    return set(profile.get("entries", {}))


def test_cli_jobs_saves_profile_for_blas_workloads(tmp_path):
    def run():
        p = _blastune(
            [
                "jobs",
                "--op",
                "dot",
                "--size",
                "32",
                "--tasks",
                "8",
                "--layouts",
                "process:2x1",
                "-r",
                "1",
                "--out",
                "jobs.json",
                "--force",
            ],
            tmp_path,
        )
        assert p.returncode == 0, p.stderr
        return p, json.loads((tmp_path / "jobs.json").read_text())

    def all_disturbed(run) -> str | None:
        if any(not r["contended"] for r in run[1]["results"]):
            return None
        return "every layout was contended (nothing may be saved): " + "; ".join(run[1]["warnings"])

    # a layout disturbed by other programs (this machine is shared) gives no advice: only clean ones count
    p, doc = quietly(run, disturbed=all_disturbed)
    clean = {str(r["layout"]["workers"]) for r in doc["results"] if not r["contended"]}
    saved = list((tmp_path / "cache" / "blastune").glob("profile-*.json"))
    assert len(saved) == 1 and f"profile updated: {saved[0]}" in p.stdout
    counts = _profile_job_counts(json.loads(saved[0].read_text()))
    assert clean <= counts and counts <= {"1", "2"}
    other = tmp_path / "other"
    other.mkdir()
    p = _blastune(
        ["jobs", "--workload", "python", "--size", "1000", "--tasks", "4", "--layouts", "serial"],
        other,
    )
    assert p.returncode == 0 and "profile updated" not in p.stdout


def test_other_programs_load_is_measured_and_reported():
    """A busy loop in another process competes for the CPU: the result says so (CPU accounting, not speed)."""
    import subprocess
    import sys

    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        res = run_jobs(
            func="jobfuncs:small_dot", tasks=None, repeats=2, layouts=[], target_seconds=0.4
        )
    finally:
        hog.kill()
        hog.wait()
    assert res.other_load_cores is not None and res.other_load_cores >= 0.3
    assert any("other programs kept" in w for w in res.warnings)
    assert res.to_dict()["other_load_cores"] == res.other_load_cores


@pytest.mark.matrix
@needs_matrix
def test_env_only_blas_gets_its_threads_in_every_layout():
    """Debian's BLIS reads BLIS_NUM_THREADS only when it loads: every layout -- serial ones too, since
    0.2 each runs in a process of its own -- gets the variable before numpy loads, so serial:1x2 runs
    2 threads (0.1.0 ran it in blastune's own process, stuck at 1, with a note saying so)."""
    code = (
        "import json\n"
        "from blastune.measure.jobs.entry import Layout, run_jobs\n"
        "res = run_jobs(op='dot', size=64, tasks=8, repeats=1,\n"
        "               layouts=[Layout('serial', 1, 2), Layout('process', 1, 2)])\n"
        "print(json.dumps(res.to_dict()))\n"
    )
    p = run_python(code, variant="blis-pthread")
    assert p.returncode == 0, p.stderr
    rows = {r["layout"]["spec"]: r for r in json.loads(p.stdout)["results"]}
    for spec in ("serial:1x2", "process:1x2"):
        assert rows[spec]["threads_seen"] == 2
        assert not any("asked for" in n for n in rows[spec]["notes"]), rows[spec]["notes"]
    assert rows["serial:1x1"]["threads_seen"] == 1


def test_ctrl_c_ends_the_workers_and_says_so_in_one_line(tmp_path):
    """typer turns KeyboardInterrupt into a silent exit 130: the user was not told what happened."""
    import signal
    import time

    import psutil

    proc = subprocess.Popen(
        [
            "blastune",
            "jobs",
            "--workload",
            "python",
            "--size",
            "20000",
            "--tasks",
            "100000",
            "--layouts",
            "process:2x1",
            "-r",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        start_new_session=True,
    )  # its own group, as a terminal's Ctrl-C reaches
    deadline, workers = time.time() + 60, []
    while (
        time.time() < deadline and len(workers) < 2
    ):  # the spawned workers (the resource tracker too)
        try:
            workers = [
                c
                for c in psutil.Process(proc.pid).children(recursive=True)
                if "resource_tracker" not in " ".join(c.cmdline())
            ]
        except psutil.Error:
            pass
        time.sleep(0.1)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.splitlines() == [
        "blastune: interrupted by Ctrl-C: worker processes ended; nothing saved (no --out)"
    ], stderr
    assert len(workers) >= 2
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive


def test_a_capped_thread_count_is_a_table_note_not_a_python_warning(tmp_path):
    """OpenBLAS caps run-time counts (64 in the wheels): the limiter's NotControllableWarning, with a
    'jobs.py:363:' source line, used to be printed three times beside the note that says the same."""
    p = _blastune(
        [
            "jobs",
            "--op",
            "dot",
            "--size",
            "16",
            "--tasks",
            "4",
            "-r",
            "1",
            "--layouts",
            "serial:1x1000",
            "--no-save-profile",
        ],
        tmp_path,
    )
    assert p.returncode == 0, p.stderr
    assert "Warning" not in p.stderr and "jobs.py" not in p.stderr, p.stderr
    assert "asked for 1000 BLAS threads, the library runs" in " ".join(
        p.stdout.split()
    )  # wrapped notes


def test_json_stdout_stays_a_document_when_tasks_print(tmp_path):
    """A task that prints progress (here, in process workers too) used to corrupt `--json | json.tool`."""
    p = _blastune(
        [
            "jobs",
            "--func",
            "jobfuncs:chatty",
            "--tasks",
            "3",
            "-r",
            "1",
            "--layouts",
            "serial,process:2x1",
            "--json",
            "--no-save-profile",
        ],
        tmp_path,
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["schema"] == "blastune.jobs/1" and "processing beam 2" in p.stderr


# --- the typed document --------------------------------------------------------------------------------

DATA = TESTS / "data" / "v0_1_0" / "jobs.json"


def test_a_0_1_0_jobs_file_loads_into_the_model():
    from blastune.documents.jobs import SPREAD_RANGE, load_jobs

    doc = load_jobs(DATA)
    assert doc.best.layout.spec == "serial:1x2" and doc.baseline.layout.spec == "serial:1x1"
    naive = next(r for r in doc.results if r.layout.threads is None)
    assert naive.layout.spec == "process:2xdefault" and naive.threads_seen == 2
    assert doc.spread_definition == SPREAD_RANGE and doc.contention is None
    # 0.1.0's rule for 'unstable' on its (max - min) / median spread: above 15% with 2+ repeats
    assert [r.unstable for r in doc.results] == [True, False, True, True, True]
    assert doc.workload.describe() == "numpy dot 100x100 float64"


def test_todays_jobs_json_has_every_key_of_0_1_0(tmp_path):
    old = json.loads(DATA.read_text())
    p = _blastune(
        [
            "jobs",
            "--func",
            "jobfuncs:square",
            "--tasks",
            "4",
            "-r",
            "1",
            "--layouts",
            "process:2xdefault",
            "--json",
            "--no-save-profile",
        ],
        tmp_path,
    )
    assert p.returncode == 0, p.stderr
    new = json.loads(p.stdout)
    assert set(old) <= set(new)
    assert set(old["results"][0]) <= set(new["results"][0])
    assert set(old["results"][0]["layout"]) <= set(new["results"][0]["layout"])
    assert set(old["workload"]) <= set(new["workload"])
    from blastune.documents.jobs import JobsResult

    again = JobsResult.from_dict(new)  # what jobs writes, the model reads back, field for field
    assert again.to_dict() == {
        k: v for k, v in new.items() if k not in ("saved_to", "profile", "profile_notices")
    }


@pytest.mark.parametrize(
    "path, value, field",
    [
        (("results", 0, "walls"), "fast", "results[0].walls: expected a list"),
        (
            ("results", 1, "layout", "workers"),
            True,
            "results[1].layout.workers: expected a whole number",
        ),
        (("results", 2, "wall_s"), -1, "results[2].wall_s: expected a number from 0 to 1e+09"),
        (
            ("results", 0, "layout", "executor"),
            "fiber",
            "results[0].layout.executor: expected one of serial",
        ),
        (("tasks",), "40", "tasks: expected a whole number"),
        (("workload", "kind"), 3, "workload.kind: expected a string"),
    ],
)
def test_a_malformed_jobs_file_is_one_line_naming_the_field(tmp_path, path, value, field):
    from blastune.documents.base import DocumentError
    from blastune.documents.jobs import load_jobs

    data = json.loads(DATA.read_text())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(DocumentError) as err:
        load_jobs(bad)
    assert "\n" not in str(err.value) and str(bad) in str(err.value) and field in str(err.value)


def test_counts_take_numpy_integers_and_refuse_bools():
    import numpy as np

    res = run_jobs(func="jobfuncs:square", tasks=np.int64(4), repeats=np.int32(1), layouts=[])
    assert res.tasks == 4 and res.repeats == 1 and type(res.tasks) is int
    for bad in (True, 2.0, "3"):
        with pytest.raises(BlastuneError, match="must be a whole number"):
            run_jobs(func="jobfuncs:square", tasks=bad, layouts=[])
        with pytest.raises(BlastuneError, match="must be a whole number"):
            run_jobs(func="jobfuncs:square", tasks=4, repeats=bad, layouts=[])


def test_out_and_force_are_the_librarys_and_name_the_python_argument(tmp_path):
    out = tmp_path / "jobs.json"
    res = run_jobs(func="jobfuncs:square", tasks=4, repeats=1, layouts=[], out=out)
    assert json.loads(out.read_text())["tasks"] == 4 and res.status == "complete"
    with pytest.raises(BlastuneError, match=r"already exists: pass force=True to overwrite it"):
        run_jobs(func="jobfuncs:square", tasks=5, repeats=1, layouts=[], out=out)
    run_jobs(func="jobfuncs:square", tasks=5, repeats=1, layouts=[], out=out, force=True)
    assert json.loads(out.read_text())["tasks"] == 5


# --- the default grid on big machines (no real run) ----------------------------------------------------


@pytest.mark.parametrize("cores", [64, 128])
def test_default_grid_stays_small_on_many_cores(cores):
    from blastune.measure.jobs.layouts import MAX_DEFAULT_LAYOUTS

    blas = make_workload(op="dot", size=50)
    grid = default_layouts(blas, cores)
    specs = [lay.spec for lay in grid]
    assert len(grid) <= MAX_DEFAULT_LAYOUTS and len(set(specs)) == len(specs)
    assert (
        specs[0] == "serial:1x1"
        and f"process:{cores}x1" in specs
        and f"process:{cores}xdefault" in specs
    )
    assert f"serial:1x{cores}" in specs and "process:2x%d" % (cores // 2) in specs
    assert all(lay.workers * lay.threads <= cores for lay in grid if lay.threads)
    py = default_layouts(make_workload(workload="python"), cores)
    assert len(py) <= MAX_DEFAULT_LAYOUTS and all(lay.threads == 1 for lay in py)


def test_default_grid_adds_pinned_variants_where_the_topology_has_domains():
    """The captured 2-socket 64-core EPYC (tests/data/sysfs/epyc-2s64c, 16 L3 domains): a few pinned
    variants, each worker's CPU set from control.pinning.plan_layout; none on a flat machine."""
    from blastune.facts.topology import read_topology
    from blastune.measure.jobs.layouts import MAX_DEFAULT_LAYOUTS

    epyc = read_topology(TESTS / "data" / "sysfs" / "epyc-2s64c", affinity=set(range(128)))
    blas = make_workload(op="dot", size=50)
    assert not any(lay.pinned for lay in default_layouts(blas, 64, None))
    grid = default_layouts(blas, 64, epyc)
    pinned = [lay for lay in grid if lay.pinned]
    assert 1 <= len(pinned) <= 3 and len(grid) <= MAX_DEFAULT_LAYOUTS
    assert all(lay.spec.endswith("+pin") and lay.workers * lay.threads == 64 for lay in pinned)
    assert Layout("process", 16, 4, pinned=True) in pinned  # one worker per L3 domain
    assert default_layouts(blas, 2, epyc) == default_layouts(blas, 2)  # on 2 cores nothing changes


def test_parse_layouts_pin_suffix():
    assert parse_layouts("process:2x1+pin") == [Layout("process", 2, 1, pinned=True)]
    for bad in ("thread:2x1+pin", "process:2x1+pinned"):
        with pytest.raises(BlastuneError):
            parse_layouts(bad)


# --- contention rule, spread, bounds (pure) -------------------------------------------------------------


@pytest.mark.parametrize(
    "cpu, wait, cores, contended",
    [
        (2.0, 0.0, 2, False),  # 2 busy threads on 2 idle cores
        (
            2.0,
            2.0,
            2,
            False,
        ),  # the naive 2 x 2 on 2 cores, quiet machine: waits 200%, loses nothing
        (
            1.3,
            2.7,
            2,
            True,
        ),  # the same beside a competitor: ran 1.3 CPUs of the 2 it could have had
        (1.3, 0.7, 2, True),  # 2 threads (fits) sharing with a competitor
        (1.0, 0.02, 2, False),  # a wake-up here and there: 2% wait
    ],
)
def test_contention_rule_tells_self_inflicted_wait_from_outside_disturbance(
    cpu, wait, cores, contended
):
    from blastune.measure.jobs.analysis import batch_verdict, lost_pct

    lost = lost_pct(cpu, wait, 1.0, cores)
    assert batch_verdict({"lost_pct": lost, "other_cores": None}).contended is contended


def test_spread_needs_three_repeats_and_bounds_are_marked():
    from blastune.documents.jobs import LayoutResult
    from blastune.measure.jobs.analysis import compare, summarize

    base = LayoutResult(Layout("serial", 1, 1), [1.0], [1.0], 1, 0.1)
    two = LayoutResult(Layout("process", 2, 1), [0.4, 0.41, 0.42], [0.7, 0.7, 0.7], 1, 0.3)
    for r in (base, two):
        r.wait_pcts = [0.0] * len(r.walls)
        r.contended_batches = [False] * len(r.walls)
        summarize(r, 10, 2)
    warnings = []
    compare([base, two], 2, warnings)
    assert base.spread is None and two.spread is not None
    assert (
        "speedup" in two.beyond_bounds and "cpu_efficiency" in two.beyond_bounds
    )  # 2.44x on 2 workers
    from blastune.present.jobs import render_jobs
    from blastune.documents.jobs import JobsResult

    text = render_jobs(JobsResult(make_workload(op="dot", size=50), 10, 3, 2, 1, [base, two], {}))
    rows = [line for line in text.splitlines() if line.startswith(("serial", "2 processes"))]
    assert "—" in rows[0] and "0%" not in rows[0].split()[4]  # a layout timed once: no spread shown
    assert "2.44x!" in rows[1] and "above 2x" in text


def test_progress_eta_comes_from_measured_cost_and_never_reads_zero():
    from blastune.cli.progress import clock

    assert clock(0.0) == "0:01" and clock(75.4) == "1:15"
    events = []
    res = run_jobs(
        func="jobfuncs:square",
        tasks=50,
        repeats=2,
        layouts=[Layout("thread", 2, 1)],
        progress=lambda e, d: events.append((e, d)),
    )
    kinds = [e for e, _ in events]
    assert kinds[0] == "plan" and kinds[-1] == "done" and kinds.count("batch") == 4
    assert events[0][1]["estimate_s"] > 0 and events[0][1]["batches"] == 4
    assert all(d["eta_s"] >= 1.0 for e, d in events if e == "batch")
    assert res.estimate_s is not None and res.elapsed_s > 0


def test_budget_is_respected_and_what_did_not_fit_is_named():
    """A plan no machine fits in the budget: each task naps 0.1 s, so three rounds of a serial batch
    of 4 (0.4 s) and three 2-worker layouts (0.2 s each) need at least 3 s, twice the 1.5 s budget; a
    busy machine only makes batches longer. What the budget left out is named, on any machine."""
    given = [Layout("thread", 2, 1), Layout("process", 2, 1), Layout("process", 2, None)]
    res = run_jobs(func="jobfuncs:naps", tasks=4, repeats=3, budget=1.5, layouts=given)
    assert res.budget_s == 1.5
    prefix = "not measured, --budget ran out: "
    skipped = next((w[len(prefix) :] for w in res.warnings if w.startswith(prefix)), "")
    timed = {r.layout.spec: r for r in res.results}
    cut = [r for r in res.results if len(r.walls) < 3]
    for r in cut:  # timed fewer times than asked: the note says why
        assert f"timed {len(r.walls)} time(s): --budget ran out" in r.notes, r.notes
    for lay in given:  # never timed: the warning names it
        assert lay.spec in timed or lay.spec in skipped.split(", "), (lay.spec, res.warnings)
    assert cut or skipped, "the budget left nothing out"
    # no batch starts once the budget is spent: every batch but the last began within it
    walls = sorted(w for r in res.results for w in r.walls)
    assert sum(walls[:-1]) <= res.budget_s, walls
