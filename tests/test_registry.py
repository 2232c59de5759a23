"""The vendor registry is the one home of vendor knowledge (issue 10, item 2).

* A fake vendor -- a real shared library built here with gcc (marker symbols, a run-time thread API)
  and one Family module with one registry line (tests/fakeblas/family.py) -- is seen by ``info``,
  ``ps``, ``env`` and ``doctor`` run as real processes, though no file under blastune/ names it.
* Each vendor's own thread variables are named in one file under blastune/: its family module.
* The rule for the threads a library really runs lives in the registry and agrees with the threads
  a real process starts (OpenBLAS caps its variable at the CPUs it may use; issue 11, item 10).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from blastune.facts import environment
from blastune.facts.census import processes
from blastune.libraries import BLAS_FAMILIES, Seat, families, register_family
from blastune.libraries.base import Family
from blastune.libraries.openblas import OpenBLAS
from tests.conftest import REPO, child_env

PACKAGE = REPO / "blastune"
FAKE_DIR = Path(__file__).resolve().parent / "fakeblas"
GCC = shutil.which("gcc") or shutil.which("cc")


@pytest.fixture(scope="module")
def fake_lib(tmp_path_factory) -> Path:
    if GCC is None:
        pytest.skip("no C compiler (gcc) to build the fake vendor library")
    out = tmp_path_factory.mktemp("fakeblas") / "libfakeblas.so.1"
    subprocess.run(
        [GCC, "-shared", "-fPIC", "-O1", "-o", str(out), str(FAKE_DIR / "fakeblas.c")], check=True
    )
    return out


def _with_fake(lib: Path, *args: str, extra=None) -> subprocess.CompletedProcess:
    """``blastune ARGS`` in a python that dlopened the fake library and imported the fake family
    module (its registry line runs on import) -- nothing else told blastune about it."""
    code = (
        "import ctypes, sys\n"
        f"ctypes.CDLL({str(lib)!r}, mode=ctypes.RTLD_GLOBAL)\n"
        "import tests.fakeblas.family\n"
        "from blastune.cli import main\n"
        "sys.argv = ['blastune', *sys.argv[1:]]\n"
        "main()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env=child_env(extra),
    )


def test_no_file_under_blastune_names_the_fake_vendor():
    hits = [str(p) for p in PACKAGE.rglob("*.py") if "fakeblas" in p.read_text().lower()]
    assert hits == []


def test_info_lists_the_fake_library_queried_through_its_own_thread_api(fake_lib):
    r = _with_fake(fake_lib, "info", "--json", extra={"FAKEBLAS_NUM_THREADS": "2"})
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    (lib,) = [lib for lib in d["loaded"] if lib["vendor"] == "fakeblas"]
    assert lib["filepath"] == str(fake_lib.resolve()) and lib["version"] == "9.9.9"
    assert (
        lib["num_threads"] == 3 and lib["control"] == "runtime"
    )  # asked of the library, not the env
    assert d["env"]["FAKEBLAS_NUM_THREADS"] == "2" and "FAKEBLAS_KERNEL" in d["env"]
    text = _with_fake(fake_lib, "info", "--wide").stdout
    assert "fakeblas" in text and "FAKEBLAS_KERNEL" in text  # a key variable: shown even unset


def test_env_exports_the_fake_thread_variable(fake_lib):
    r = _with_fake(fake_lib, "env", "--threads", "3")
    assert r.returncode == 0, r.stderr
    assert "export FAKEBLAS_NUM_THREADS=3" in r.stdout.splitlines()
    assert "export OPENBLAS_NUM_THREADS=3" in r.stdout.splitlines()


def test_ps_finds_another_process_running_the_fake_library(fake_lib):
    sleeper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import ctypes, sys, time; ctypes.CDLL({str(fake_lib)!r}); "
            "print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env({"FAKEBLAS_NUM_THREADS": "64"}),
    )
    try:
        assert sleeper.stdout.readline().strip() == "ready"
        r = _with_fake(fake_lib, "ps", "--json", "--interval", "0.2")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert r.returncode == 0, r.stderr
    (p,) = [p for p in json.loads(r.stdout)["processes"] if p["pid"] == sleeper.pid]
    assert p["vendors"] == ["fakeblas"] and p["env"]["FAKEBLAS_NUM_THREADS"] == "64"
    cpus = len(os.sched_getaffinity(0))
    # the family's own rule: its variable, capped at the CPUs the process may use
    assert (
        p["blas_threads"] == cpus and "FAKEBLAS_NUM_THREADS=64, capped" in p["blas_threads_basis"]
    )


def test_doctor_checks_the_fake_variable_and_runs_the_fake_check(fake_lib):
    r = _with_fake(fake_lib, "doctor", "--json", extra={"FAKEBLAS_NUM_THREADS": "lots"})
    d = json.loads(r.stdout)
    assert r.returncode == 2, r.stderr  # an error finding
    (bad,) = [f for f in d["findings"] if f["id"] == "env-integer" and f["severity"] == "error"]
    assert "FAKEBLAS_NUM_THREADS='lots'" in bad["finding"]
    (own,) = [f for f in d["findings"] if f["id"] == "fakeblas-threads"]
    assert (
        own["severity"] == "info"
        and "runs 3 threads" in own["finding"]
        and "called by" not in own["finding"]
    )
    assert any(lib["vendor"] == "fakeblas" for lib in d["libraries"])


def test_register_family_is_idempotent_and_ordered():
    class Early(Family):
        name, api = "early-test-family", "blas"

    before = list(BLAS_FAMILIES)
    try:
        register_family(Early, before=BLAS_FAMILIES[1])
        register_family(Early)
        assert BLAS_FAMILIES.count(Early) == 1 and BLAS_FAMILIES.index(Early) == 1
        with pytest.raises(TypeError):
            register_family(object)
    finally:
        BLAS_FAMILIES[:] = before


# ---------------------------------------------------------------- one home per vendor variable


def own_variables(fam) -> tuple[str, ...]:
    """The thread-count variables only this family reads (OMP_NUM_THREADS is shared by design)."""
    others = {v for f in families() if f is not fam for v in f.thread_vars + f.integer_vars}
    return tuple(v for v in fam.thread_vars + fam.integer_vars if v not in others)


def files_naming(variables) -> list[str]:
    return sorted(
        str(p.relative_to(REPO))
        for p in PACKAGE.rglob("*.py")
        if any(v in p.read_text() for v in variables)
    )


@pytest.mark.parametrize("fam", [f for f in families() if own_variables(f)], ids=lambda f: f.name)
def test_each_vendor_thread_variable_lives_in_one_file(fam):
    files = files_naming(own_variables(fam))
    print(f"{fam.name}: {own_variables(fam)} named in {len(files)} file(s): {files}")
    assert files == [str(Path(sys.modules[fam.__module__].__file__).resolve().relative_to(REPO))]


def test_environment_lists_derive_from_the_registry():
    assert environment.THREAD_VARS == environment.thread_vars()
    for fam in families():
        assert set(fam.thread_vars) <= set(environment.THREAD_VARS)
        assert set(fam.thread_vars + fam.integer_vars) <= set(environment.INTEGER_VARS)
        assert set(fam.reads()) <= set(environment.ALL_VARS)
    assert "BLIS_PC_NT" in environment.INTEGER_VARS  # missing from every list in 0.1.0
    # a variable of one family outranks one many share, whatever the order they were set in
    assert environment.requested_threads({"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1"}) == (
        1,
        "OPENBLAS_NUM_THREADS",
    )
    assert environment.requested_threads({"OPENBLAS_NUM_THREADS": "³"}) == (
        None,
        None,
    )  # not a digit to C


# ---------------------------------------------------------------- the threads a library really runs


def test_openblas_rule_caps_at_the_cpus_of_the_process():
    seat = Seat(cpus=2, physical_cores=2)
    assert OpenBLAS.planned_threads({"OPENBLAS_NUM_THREADS": "4"}, seat)[0] == 2
    assert (
        OpenBLAS.planned_threads({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "4"}, seat)[0]
        == 1
    )
    assert OpenBLAS.planned_threads({}, Seat(cpus=3))[0] == 3
    # the OpenMP build follows OMP_NUM_THREADS, uncapped
    openmp = ["/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3"]
    assert (
        OpenBLAS.planned_threads(
            {"OMP_NUM_THREADS": "4", "OPENBLAS_NUM_THREADS": "1"}, seat, openmp
        )[0]
        == 4
    )


THREADS_AFTER_A_PRODUCT = (
    "import numpy as np, os; a = np.ones((400, 400)); a @ a; "
    "print(len(os.listdir('/proc/self/task')), flush=True); import time; time.sleep(60)"
)


@pytest.mark.parametrize("cpus", [1, 2])
def test_ps_counts_the_threads_openblas_really_starts(cpus):
    # issue 11 item 10: OPENBLAS_NUM_THREADS=cpus+2 -- OpenBLAS starts one thread per CPU it may use
    # (its pthreads pool: the caller + workers, made at load), and ps must say that, not cpus+2
    if len(os.sched_getaffinity(0)) < cpus or not shutil.which("taskset"):
        pytest.skip(f"needs {cpus} CPUs and taskset")
    mask = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:cpus])
    env = child_env({"OPENBLAS_NUM_THREADS": str(cpus + 2)}, threads=None)
    proc = subprocess.Popen(
        ["taskset", "-c", mask, sys.executable, "-c", THREADS_AFTER_A_PRODUCT],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        tasks = int(proc.stdout.readline())
        census = processes(interval=0)
        p = census.find(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert p is not None and "openblas" in p.vendors
    assert tasks == cpus, "the real process: one thread per CPU it may use"
    assert p.blas_threads == cpus == tasks
    assert f"OPENBLAS_NUM_THREADS={cpus + 2}, capped at the {cpus} CPUs" in p.blas_threads_basis
