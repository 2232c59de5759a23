"""blastune doctor under the real BLAS builds of the matrix: each build's own finding, exit statuses,
and an OPENBLAS_CORETYPE that kills the BLAS with SIGILL in the probe child but not doctor itself."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.conftest import (
    MATRIX_PYTHON,
    VARIANTS,
    WITH_BLAS,
    allowed_ambient_warnings,
    child_env,
    needs_matrix,
)

pytestmark = [pytest.mark.matrix, needs_matrix]

# What each build must (and must only) warn about, run with OPENBLAS_NUM_THREADS=1 and nothing else set:
# the OpenMP OpenBLAS ignores that variable, BLIS stays at 1 thread, reference and ATLAS are slow.
EXPECTED_WARNINGS = {
    "openblas-pthread": set(),
    "openblas-openmp": {"openblas-openmp-env"},
    "blis-pthread": {"blis-default-threads"},
    "blis-openmp": {"blis-default-threads"},
    "atlas": {"slow-blas"},
    "reference": {"slow-blas"},
    "mkl": set(),
}


def matrix_run(variant, *args, extra=None, threads=None, module_args=("doctor", "--json")):
    env = child_env(extra, threads)
    cmd = [str(WITH_BLAS), variant, str(MATRIX_PYTHON), "-m", "blastune", *module_args, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def findings(report, severity):
    return {f["id"] for f in report["findings"] if f["severity"] == severity}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_runs_and_warns_about_its_own_problem(variant):
    proc = matrix_run(variant, "--strict", extra={"OPENBLAS_NUM_THREADS": "1"})
    report = json.loads(proc.stdout)
    assert findings(report, "error") == set(), report["findings"]
    warned = findings(report, "warning")
    assert warned - allowed_ambient_warnings() == EXPECTED_WARNINGS[variant], report["findings"]
    assert proc.returncode == (1 if warned else 0)
    assert report["probe"]["ok"]
    assert all("\n" not in f["finding"] + f["fix"] for f in report["findings"])  # one line each
    assert all(f["fix"] for f in report["findings"] if f["severity"] in ("warning", "error"))
    # ps under the same build: runs, finds nothing wrong with itself
    ps = matrix_run(variant, module_args=("ps", "--json", "--interval", "0"))
    assert ps.returncode == 0 and json.loads(ps.stdout)["schema"] == "blastune.ps/1"


@pytest.mark.parametrize("variant, rate", [("reference", "2.6 GFLOP/s"), ("atlas", "10 GFLOP/s")])
def test_slow_blas_names_the_measured_rate_and_how_to_switch(variant, rate):
    report = json.loads(matrix_run(variant, threads=1).stdout)
    (f,) = [f for f in report["findings"] if f["id"] == "slow-blas"]
    assert rate in f["finding"] and "44" in f["finding"] and "numpy and scipy" in f["finding"]
    assert "pip install" in f["fix"] and "conda" in f["fix"] and "update-alternatives" in f["fix"]


def test_blis_with_threads_set_is_fine():
    report = json.loads(matrix_run("blis-pthread", extra={"BLIS_NUM_THREADS": "2"}).stdout)
    assert findings(report, "ok") >= {"blis-default-threads"}


def test_openmp_openblas_follows_omp_num_threads():
    proc = matrix_run("openblas-openmp", extra={"OPENBLAS_NUM_THREADS": "1"})
    (f,) = [f for f in json.loads(proc.stdout)["findings"] if f["id"] == "openblas-openmp-env"]
    assert "ignored" in f["finding"] and f["fix"] == "export OMP_NUM_THREADS=1"
    fixed = json.loads(matrix_run("openblas-openmp", threads=1).stdout)  # both variables set to 1
    assert "openblas-openmp-env" in findings(fixed, "ok")


@pytest.mark.parametrize("omp", [None, " 1 "])
def test_openmp_openblas_fix_is_a_valid_export_even_for_a_malformed_value(omp):
    extra = {"OPENBLAS_NUM_THREADS": "two"} | ({"OMP_NUM_THREADS": omp} if omp else {})
    report = json.loads(matrix_run("openblas-openmp", extra=extra).stdout)
    fixes = [
        f["fix"]
        for f in report["findings"]
        if f["id"] == "openblas-openmp-env" and f["severity"] != "ok"
    ]
    assert all(re.fullmatch(r"export OMP_NUM_THREADS=[1-9][0-9]*", fix) for fix in fixes), fixes
    assert len(fixes) == (0 if omp else 1)  # ' 1 ' and 1 are the same count: no conflict to report
    assert "env-integer" in findings(report, "error")


@pytest.mark.parametrize("layer, stage", [("tbb", "import numpy"), ("bogus", "matmul")])
def test_mkl_layer_that_cannot_load_ends_the_probe_not_doctor(layer, stage):
    # Measured: oneMKL 2024.2 calls exit(2) at import for TBB without libtbb, and an unknown layer falls
    # back to Intel's, whose missing libiomp5 symbols make the loader end the process (127) at the
    # first call -- any in-process query of MKL by doctor would end doctor the same way.
    proc = matrix_run("mkl", extra={"MKL_THREADING_LAYER": layer}, threads=1)
    report = json.loads(proc.stdout)
    (f,) = [f for f in report["findings"] if f["id"] == "blas-probe"]
    assert (
        f["severity"] == "error" and f"'{stage}'" in f["finding"] and "mkl" in f["finding"].lower()
    )
    assert f["fix"].startswith("unset MKL_THREADING_LAYER")
    assert proc.returncode == 2


def test_mkl_reads_its_variable_strictly():
    # MKL_NUM_THREADS=' 2' gives oneMKL 1 thread (libgomp and OpenBLAS would skip the blanks)
    report = json.loads(
        matrix_run("mkl", extra={"MKL_NUM_THREADS": " 2"}).stdout
    )  # OMP_NUM_THREADS unset
    assert "env-integer" in findings(report, "error")
    assert [lib["num_threads"] for lib in report["libraries"] if lib["vendor"] == "mkl"] == [1]


def test_coretype_the_cpu_lacks_kills_the_probe_not_doctor():
    # Debian's OpenBLAS has Bulldozer kernels; they use AMD's FMA4, which this (Intel) CPU lacks.
    flags = open("/proc/cpuinfo").read()
    if " fma4" in flags:
        pytest.skip("this CPU has FMA4: Bulldozer kernels run here")
    # (OPENBLAS_CORETYPE set on purpose, in this one child's environment only)
    proc = matrix_run("openblas-pthread", threads=1, extra={"OPENBLAS_CORETYPE": "Bulldozer"})
    assert proc.returncode == 2 and proc.stderr == ""
    report = json.loads(proc.stdout)
    probe = report["probe"]
    assert probe["signal"] == "SIGILL" and probe["returncode"] == -4 and probe["stage"] == "matmul"
    by = {f["id"]: f for f in report["findings"]}
    assert by["blas-probe"]["severity"] == "error" and "SIGILL" in by["blas-probe"]["finding"]
    assert by["blas-probe"]["fix"].startswith("unset OPENBLAS_CORETYPE")
    assert (
        by["openblas-coretype"]["severity"] == "error"
        and "fma4" in by["openblas-coretype"]["finding"]
    )
    # the crash is real: the same product outside doctor dies the same way
    plain = subprocess.run(
        [
            str(WITH_BLAS),
            "openblas-pthread",
            str(MATRIX_PYTHON),
            "-c",
            "import numpy as np; a = np.ones((200, 200)); a @ a",
        ],
        env=child_env({"OPENBLAS_CORETYPE": "Bulldozer"}),
        capture_output=True,
        timeout=60,
    )
    assert plain.returncode == -4
