"""``blastune info --json`` under the seven real BLAS builds of ../shared/blas-matrix.

Each variant runs ``python -m blastune info --json`` in the matrix venv (Debian numpy 1.24 /
scipy 1.10) through ``with-blas``. What blastune says is checked against the truth gathered
independently inside a second child: /proc/self/maps (what is really mapped), ``nm -D`` on the
serving files (they really define the symbol), and threadpoolctl before and after blastune
registered its controller.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import MATRIX_PYTHON, VARIANTS, WITH_BLAS, child_env, needs_matrix, run_python

pytestmark = [pytest.mark.matrix, needs_matrix]

# variant -> {(package, api): (vendor, threading layer, control)} for numpy and scipy alike
OPENBLAS_PT = ("openblas", "pthreads", "runtime")
OPENBLAS_OMP = ("openblas", "openmp", "runtime")
REFERENCE = ("reference", "none", "fixed")
EXPECTED = {
    "openblas-pthread": {"blas": OPENBLAS_PT, "lapack": OPENBLAS_PT},
    "openblas-openmp": {"blas": OPENBLAS_OMP, "lapack": OPENBLAS_OMP},
    "blis-pthread": {"blas": ("blis", "pthreads", "env"), "lapack": REFERENCE},
    "blis-openmp": {"blas": ("blis", "openmp", "env"), "lapack": REFERENCE},
    "atlas": {"blas": ("atlas", "none", "fixed"), "lapack": ("atlas", "none", "fixed")},
    "reference": {"blas": REFERENCE, "lapack": REFERENCE},
    "mkl": {"blas": ("mkl", "gnu", "runtime"), "lapack": ("mkl", "gnu", "runtime")},
}
# The implementation files each variant really loads, written down from the Debian packages and
# the MKL wheel (not from blastune): shims such as openblas-pthread/libblas.so.3 are not listed.
IMPLEMENTATIONS = {
    "openblas-pthread": [r"/openblas-pthread/libopenblasp?-r[\d.]+\.so$"],
    "openblas-openmp": [r"/openblas-openmp/libopenblasp?-r[\d.]+\.so$", r"/libgomp\.so[\d.]*$"],
    "blis-pthread": [r"/blis-pthread/libblas\.so\.3$", r"/lapack/liblapack\.so\.3[\d.]*$"],
    "blis-openmp": [
        r"/blis-openmp/libblas\.so\.3$",
        r"/lapack/liblapack\.so\.3[\d.]*$",
        r"/libgomp\.so[\d.]*$",
    ],
    "atlas": [r"/libatlas\.so\.3[\d.]*$"],
    "reference": [r"/blas/libblas\.so\.3[\d.]*$", r"/lapack/liblapack\.so\.3[\d.]*$"],
    "mkl": [r"/libmkl_rt\.so[\d.]*$", r"/libgomp\.so[\d.]*$"],
}
# what threadpoolctl calls the libraries it could not see without blastune's controller
TP_ADDED = {
    "blis-pthread": {"blis", "reference"},
    "blis-openmp": {"blis", "reference"},
    "atlas": {"atlas"},
    "reference": {"reference"},
}


def typer_in_matrix_venv() -> bool:
    r = subprocess.run([str(MATRIX_PYTHON), "-c", "import typer, tabulate"], capture_output=True)
    return r.returncode == 0


@pytest.fixture(scope="module", autouse=True)
def _cli_installable():
    if not typer_in_matrix_venv():
        pytest.skip(
            f"typer/tabulate missing in {MATRIX_PYTHON.parent.parent}: "
            f"run {MATRIX_PYTHON.parent}/pip install -e . (as .ci/run does)"
        )


def info_json(variant: str, threads: int | None = None, **env) -> dict:
    """``python -m blastune info --json`` under ``variant`` (thread variables unset unless given)."""
    r = subprocess.run(
        [str(WITH_BLAS), variant, str(MATRIX_PYTHON), "-m", "blastune", "info", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(env, threads=threads),
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout)


def lib_of(d: dict, package: str, api: str) -> dict:
    b = next(b for b in d["bindings"] if (b["package"], b["api"]) == (package, api))
    assert b["error"] is None, b["error"]
    return b["library"]


@pytest.fixture(scope="module")
def infos():
    """One plain run per variant, shared by the tests below."""
    return {v: info_json(v) for v in VARIANTS}


@pytest.mark.parametrize("variant", VARIANTS)
def test_vendor_layer_and_control(infos, variant):
    d = infos[variant]
    assert d["packages"]["numpy"]["version"].startswith("1.")  # Debian's numpy, not the pip wheel
    for package in ("numpy", "scipy"):
        for api in ("blas", "lapack"):
            lib = lib_of(d, package, api)
            assert (lib["vendor"], lib["threading_layer"], lib["control"]) == EXPECTED[variant][
                api
            ], (package, api)
            if lib["control"] == "fixed":
                assert lib["num_threads"] == 1 and lib["threads_source"] == "build"
            if lib["control"] == "runtime":
                assert lib["threads_source"] == "queried" and lib["num_threads"] >= 1
    # numpy and scipy go through the same system libblas/liblapack here
    assert lib_of(d, "numpy", "blas")["filepath"] == lib_of(d, "scipy", "blas")["filepath"]


TRUTH = r"""
import json, os, subprocess
import numpy, scipy.linalg, threadpoolctl
before = threadpoolctl.threadpool_info()
import blastune
d = blastune.info().to_dict()
after = threadpoolctl.threadpool_info()
maps = sorted({l.split(None, 5)[5].strip() for l in open(f"/proc/{os.getpid()}/maps") if len(l.split(None, 5)) == 6})
print(json.dumps({"info": d, "maps": maps, "before": before, "after": after}))
"""


@pytest.fixture(scope="module")
def truths():
    out = {}
    for v in VARIANTS:
        r = run_python(TRUTH, v, env=child_env(threads=None))
        assert r.returncode == 0, r.stderr
        out[v] = json.loads(r.stdout)
    return out


@pytest.mark.parametrize("variant", VARIANTS)
def test_loaded_agrees_with_proc_maps(truths, variant):
    t = truths[variant]
    maps = set(t["maps"])
    expected = {p for p in maps if any(re.search(rx, p) for rx in IMPLEMENTATIONS[variant])}
    for rx in IMPLEMENTATIONS[variant]:
        assert any(re.search(rx, p) for p in maps), f"{rx} not mapped: is the matrix intact?"
    assert {lib["filepath"] for lib in t["info"]["loaded"]} == expected


@pytest.mark.skipif(not shutil.which("nm"), reason="binutils (nm) not installed")
@pytest.mark.parametrize("variant", VARIANTS)
def test_serving_files_are_mapped_and_define_the_symbol(truths, variant):
    t = truths[variant]
    for b in t["info"]["bindings"]:
        assert b["serving_file"] in t["maps"]
        out = subprocess.run(
            ["nm", "-D", "--defined-only", b["serving_file"]], capture_output=True, text=True
        ).stdout
        assert re.search(rf"\s{re.escape(b['symbol'])}(@|$)", out, re.M), (
            b["symbol"],
            b["serving_file"],
        )


@pytest.mark.parametrize("variant", VARIANTS)
def test_threadpoolctl_sees_what_blastune_registered(truths, variant):
    t = truths[variant]
    before = {(x["internal_api"], x["filepath"]) for x in t["before"]}
    after = {(x["internal_api"], x["filepath"]) for x in t["after"]}
    assert before <= after
    added = after - before
    assert {api for api, _ in added} == TP_ADDED.get(variant, set())
    # every added row is one of blastune's loaded libraries (no shims, no duplicates)
    loaded = {(lib["vendor"], lib["filepath"]) for lib in t["info"]["loaded"]}
    assert {(api, os.path.realpath(p)) for api, p in added} <= loaded
    assert len(t["after"]) == len({x["filepath"] for x in t["after"]})
    for x in t["after"]:
        if (x["internal_api"], x["filepath"]) in added:
            assert x["num_threads"] >= 1 and x["control"] in ("env", "fixed")
    # and blastune knows which libraries threadpoolctl could see
    assert all(lib["threadpoolctl_sees"] for lib in t["info"]["loaded"])


# ---------------------------------------------------------------- requested thread counts


def blas_threads(d: dict) -> tuple[int, str]:
    lib = lib_of(d, "numpy", "blas")
    assert lib_of(d, "scipy", "blas")["num_threads"] == lib["num_threads"]
    return lib["num_threads"], lib["threads_source"]


def test_openblas_pthread_obeys_openblas_num_threads():
    assert blas_threads(info_json("openblas-pthread", OPENBLAS_NUM_THREADS="1")) == (1, "queried")


def test_openblas_openmp_obeys_omp_not_openblas_num_threads():
    assert blas_threads(info_json("openblas-openmp", OMP_NUM_THREADS="1")) == (1, "queried")
    d = info_json("openblas-openmp", OPENBLAS_NUM_THREADS="1")
    if (os.cpu_count() or 1) > 1:
        assert blas_threads(d)[0] == os.cpu_count(), "the OpenMP build ignores OPENBLAS_NUM_THREADS"
    lib = lib_of(d, "numpy", "blas")
    assert lib["control_vars"] == ["OMP_NUM_THREADS"]
    assert any("ignores OPENBLAS_NUM_THREADS" in n for n in lib["notes"])


@pytest.mark.parametrize("variant", ["blis-pthread", "blis-openmp"])
def test_blis_thread_count_comes_from_env(infos, variant):
    assert blas_threads(infos[variant]) == (1, "env")  # nothing set: BLIS runs 1 thread
    assert blas_threads(info_json(variant, BLIS_NUM_THREADS="2")) == (2, "env")
    # measured by bench/blis_env_threads.py: OMP_NUM_THREADS counts when BLIS_NUM_THREADS is unset,
    # in the pthreads build too, and BLIS_NUM_THREADS wins over it
    assert blas_threads(info_json(variant, OMP_NUM_THREADS="2")) == (2, "env")
    assert blas_threads(info_json(variant, BLIS_NUM_THREADS="1", OMP_NUM_THREADS="2")) == (1, "env")


def test_mkl_obeys_mkl_num_threads():
    assert blas_threads(info_json("mkl", MKL_NUM_THREADS="1")) == (1, "queried")


@pytest.mark.parametrize("variant", ["atlas", "reference"])
def test_fixed_builds_ignore_every_thread_variable(variant):
    d = info_json(variant, threads=2, BLIS_NUM_THREADS="2", MKL_NUM_THREADS="2")
    for package in ("numpy", "scipy"):
        for api in ("blas", "lapack"):
            lib = lib_of(d, package, api)
            assert (lib["num_threads"], lib["control"]) == (1, "fixed")


# ---------------------------------------------------------------- the reported count is the real one

COUNT_THREADS = r"""
import json, os, threading, time
import numpy as np
import blastune
reported = blastune.info().binding("numpy", "blas").library.num_threads
a = np.ones((500, 500)); b = np.ones((500, 500))
a @ b
peak, stop = [0], threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], len(os.listdir('/proc/self/task')))
        time.sleep(0.0002)
t = threading.Thread(target=sample); t.start()
# BLIS's pthreads build starts its workers per call: on a loaded machine the sampler may need a
# while to catch them, so run until the reported count is seen (or 3 s), then 0.3 s more to catch
# any extra threads
start = time.perf_counter(); seen = None
while time.perf_counter() - start < 3 and (seen is None or time.perf_counter() - seen < 0.3):
    a @ b
    if seen is None and peak[0] - 1 >= reported:
        seen = time.perf_counter()
stop.set(); t.join()
# a fresh process with numpy has only its main thread plus the BLAS's workers; minus the sampler
print(json.dumps({"running": peak[0] - 1, "reported": reported}))
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 cores to tell 1 thread from 2")
@pytest.mark.parametrize(
    "variant,env",
    [
        ("blis-pthread", {}),
        ("blis-pthread", {"OMP_NUM_THREADS": "2"}),
        ("blis-openmp", {"BLIS_NUM_THREADS": "2"}),
        ("blis-openmp", {"BLIS_NUM_THREADS": "1", "OMP_NUM_THREADS": "2"}),
        ("openblas-openmp", {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "2"}),
        ("openblas-pthread", {"OPENBLAS_NUM_THREADS": "1"}),
    ],
    ids=lambda x: (
        x if isinstance(x, str) else ",".join(f"{k}={v}" for k, v in x.items()) or "unset"
    ),
)
def test_reported_threads_are_the_threads_that_run(variant, env):
    # This test is about threads: at most 2, on 300x300 matrices, for 0.4 s.
    r = run_python(COUNT_THREADS, variant, env=child_env(env, threads=None))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["reported"] == out["running"], out


@pytest.mark.parametrize("variant", VARIANTS)
def test_text_tells_what_the_json_tells(infos, variant):
    """The tables must not drop what --json says: versions, each library's control and its notes."""
    r = subprocess.run(
        [str(WITH_BLAS), variant, str(MATRIX_PYTHON), "-m", "blastune", "info", "--wide"],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env({}, threads=None),
    )
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    text, d = r.stdout, infos[variant]
    for name, pkg in d["packages"].items():
        assert f"{name} {pkg['version']}" in text
    control_text = {
        "runtime": "at run time",
        "env": "env var before start",
        "fixed": "fixed at build",
    }
    for lib in d["loaded"]:
        row = next(
            line
            for line in text.splitlines()
            if line.startswith(lib["vendor"]) and lib["filepath"] in line
        )
        assert control_text[lib["control"]] in row, row
        for note in lib["notes"]:
            assert note in text, note
