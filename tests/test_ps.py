"""blastune ps: real python children with numpy's OpenBLAS (and the matrix's builds) must be found,
counted and judged; other engineers' processes may appear too, so assertions go by our pids."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager

import pytest

from blastune.facts.census import BlasProcess, _census, processes, vendor_of_path
from tests.conftest import MATRIX_PYTHON, WITH_BLAS, child_env, needs_matrix

BLASTUNE = shutil.which("blastune") or ""

IDLE = "import numpy, sys, time; print('ready', flush=True); time.sleep(120)"
SPIN = ("import numpy, sys, time; print('ready', flush=True)\n"
        "t = time.time()\n"
        "while time.time() - t < 20: pass")


@contextmanager
def children(specs):
    """Start ``[(cmd_prefix, code, env)]`` children, wait until each imported numpy, kill them after."""
    procs = []
    try:
        for prefix, code, env in specs:
            p = subprocess.Popen([*prefix, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
            procs.append(p)
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()


def ps_json(*args):
    proc = subprocess.run([BLASTUNE, "ps", "--json", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.skipif(not BLASTUNE, reason="the blastune console script is not on PATH")
def test_ps_finds_and_counts_two_single_thread_numpy_processes():
    env = child_env({"OPENBLAS_NUM_THREADS": "1"})
    with children([([sys.executable], IDLE, env)] * 2) as pids:
        census = ps_json("--interval", "0.2")
    ours = [p for p in census["processes"] if p["pid"] in pids]
    assert sorted(p["pid"] for p in ours) == sorted(pids)
    for p in ours:
        assert "openblas" in p["vendors"]
        assert any("openblas" in lib for lib in p["libraries"])
        assert p["env"]["OPENBLAS_NUM_THREADS"] == "1"
        assert p["blas_threads"] == 1 and "OPENBLAS_NUM_THREADS=1" in p["blas_threads_basis"]
        assert p["threads"] >= 1 and p["cpu_percent"] is not None
        assert "-c import numpy" in p["command"]
    assert census["total_blas_threads"] >= 2
    assert census["verdict"] in ("ok", "at-risk", "oversubscribed")


def test_default_pools_add_up_past_the_cores_and_a_busy_process_shows_cpu():
    # unset thread vars: each OpenBLAS pool defaults to one thread per usable core
    idle_env = child_env(threads=None)
    busy_env = child_env({"OPENBLAS_NUM_THREADS": "1"})
    with children([([sys.executable], IDLE, idle_env)] * 2 + [([sys.executable], SPIN, busy_env)]) as pids:
        census = processes(interval=0.5)
    usable = census.usable_cores
    idle = [census.find(pid) for pid in pids[:2]]
    busy = census.find(pids[2])
    assert all(p is not None and p.blas_threads == usable for p in idle)
    assert all("default" in p.blas_threads_basis for p in idle)
    # OpenBLAS starts its pool at load: the OS threads are really there
    assert all(p.threads >= usable for p in idle)
    assert busy is not None and busy.cpu_percent > 10 and busy.busy
    assert census.total_blas_threads >= 2 * usable + 1 > usable
    assert census.verdict in ("at-risk", "oversubscribed")


def _proc(pid, blas, cpu):
    return BlasProcess(pid, "u", "python x.py", ["openblas"], ["/x/libopenblas.so"], blas + 1, cpu, 2, {}, blas, "t")


def test_verdict_rules():
    assert _census([_proc(1, 1, 99.0), _proc(2, 1, 99.0)], 2, "b", 0.5, 0).verdict == "ok"
    at_risk = _census([_proc(1, 2, 0.0), _proc(2, 2, 99.0)], 2, "b", 0.5, 0)
    assert at_risk.verdict == "at-risk" and at_risk.total_blas_threads == 4 and at_risk.busy_blas_threads == 2
    over = _census([_proc(1, 2, 90.0), _proc(2, 2, 99.0)], 2, "b", 0.5, 0)
    assert over.verdict == "oversubscribed" and "blastune env --jobs 2" in over.message


@pytest.mark.parametrize("path, vendor", [
    ("/usr/lib/python3/dist-packages/numpy.libs/libscipy_openblas64_-32a4b2a6.so", "openblas"),
    ("/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so", "openblas"),
    ("/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3", "openblas"),
    ("/usr/lib/x86_64-linux-gnu/blis-pthread/libblas.so.3", "blis"),
    ("/usr/lib/x86_64-linux-gnu/libblis.so.4", "blis"),
    ("/usr/lib/x86_64-linux-gnu/libatlas.so.3.10.3", "atlas"),
    ("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0", "reference"),
    ("/tmp/blasmatrix/venv/lib/libmkl_rt.so.2", "mkl"),
    ("/usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0", "libgomp"),
    ("/usr/lib/llvm-14/lib/libomp.so.5", "libomp"),
    ("/opt/intel/lib/libiomp5.so", "libiomp"),
    ("/opt/x/lib/libblas.so.3", "blas"),
    ("/usr/lib/x86_64-linux-gnu/libm.so.6", None),
    ("/usr/lib/x86_64-linux-gnu/lapack/liblapack.so.3", None),
])
def test_vendor_of_path(path, vendor):
    assert vendor_of_path(path) == vendor


@pytest.mark.matrix
@needs_matrix
def test_ps_sees_the_matrix_builds_and_their_openmp_runtimes():
    specs = [([str(WITH_BLAS), variant, str(MATRIX_PYTHON)], IDLE, child_env(threads=1))
             for variant in ("openblas-openmp", "mkl", "atlas")]
    with children(specs) as pids:
        census = processes(interval=0)
    omp, mkl, atlas = (census.find(pid) for pid in pids)
    assert omp.vendors == ["openblas", "libgomp"] and omp.blas_threads == 1
    assert "OMP_NUM_THREADS" in omp.blas_threads_basis  # the OpenMP build reads only that one
    assert mkl.vendors == ["mkl", "libgomp"]
    assert atlas.vendors == ["atlas"] and atlas.blas_threads == 1


@pytest.mark.skipif(not BLASTUNE, reason="the blastune console script is not on PATH")
def test_watch_prints_json_lines_until_interrupted():
    proc = subprocess.Popen([BLASTUNE, "ps", "--watch", "0.3", "--json", "--interval", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first, second = json.loads(proc.stdout.readline()), json.loads(proc.stdout.readline())
        assert first["schema"] == second["schema"] == "blastune.ps/1"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(not BLASTUNE, reason="the blastune console script is not on PATH")
@pytest.mark.parametrize("args", [["5"], ["--watch", "0"], ["--interval", "-1"], ["--interval", "inf"],
                                  ["--interval", "1e9"], ["--watch", "nan"], ["--watch", "inf"]])
def test_ps_usage_errors_are_one_line(args):
    proc = subprocess.run([BLASTUNE, "ps", *args], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.startswith("blastune: error:") and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not BLASTUNE, reason="the blastune console script is not on PATH")
def test_ps_table_output():
    with children([([sys.executable], IDLE, child_env({"OPENBLAS_NUM_THREADS": "1"}))]) as (pid,):
        proc = subprocess.run([BLASTUNE, "ps", "--interval", "0", "--format", "github"],
                              capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    row = next(line for line in proc.stdout.splitlines() if line.startswith(f"| {pid} "))
    assert "openblas" in row and "OPENBLAS_NUM_THREADS=1" in row
    assert any(line.startswith(v + ":") for line in proc.stdout.splitlines() for v in ("ok", "at-risk", "oversubscribed"))


def test_processes_that_exit_during_the_scan_are_dropped_not_a_traceback():
    # They map numpy's OpenBLAS when the scan starts and exit while it samples CPU time; left unreaped
    # they are zombies, whose /proc entries still answer -- they run no BLAS and must not be listed.
    quit_soon = "import numpy, time; print('ready', flush=True); time.sleep(0.3)"
    env = child_env()
    specs = [([sys.executable], quit_soon, env)] * 3 + [([sys.executable], IDLE, env)]
    with children(specs) as pids:
        census = processes(interval=1.5)
        assert census.find(pids[-1]) is not None
        assert all(census.find(pid) is None for pid in pids[:-1]), [p.pid for p in census.processes]
