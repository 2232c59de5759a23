"""Detection on the pip path (numpy 2.x + scipy wheels: two OpenBLAS copies).

Expectations are derived without blastune: which file serves a call comes from the extension
module's own dynamic section and symbol tables (readelf / nm), what is loaded from /proc/self/maps,
and thread counts, versions and threading layers from threadpoolctl.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import numpy
import scipy.linalg  # noqa: F401  (loads scipy's BLAS/LAPACK into this process)
from threadpoolctl import threadpool_info

from blastune.facts.detect import bindings, extension_file, family_of, inventory, loaded_paths
from tests.conftest import child_env

needs_binutils = pytest.mark.skipif(
    not (shutil.which("nm") and shutil.which("readelf")),
    reason="binutils (nm, readelf) not installed",
)


def mapped() -> list[str]:
    with open("/proc/self/maps") as f:
        return sorted(
            {line.split(None, 5)[5].strip() for line in f if len(line.split(None, 5)) == 6}
        )


def needed(path: str) -> list[str]:
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def symbols(path: str, which: str) -> set[str]:
    out = subprocess.run(
        ["nm", "-D", f"--{which}-only", path], capture_output=True, text=True, check=True
    ).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}


def serving_file_by_binutils(module, pattern: str) -> tuple[str, str]:
    """(symbol, file): the BLAS symbol ``module`` imports and the NEEDED library that defines it."""
    ext = os.path.realpath(module.__file__)
    wanted = sorted(s for s in symbols(ext, "undefined") if re.fullmatch(pattern, s))
    assert wanted, f"{ext} imports no symbol matching {pattern}"
    by_name = {}
    for path in mapped():
        by_name.setdefault(os.path.basename(path), path)
    for lib in needed(ext):
        path = by_name.get(lib)
        if path and wanted[0] in symbols(path, "defined"):
            return wanted[0], os.path.realpath(path)
    raise AssertionError(f"no NEEDED library of {ext} defines {wanted[0]}")


def is_pip_numpy() -> bool:
    return os.path.isdir(
        os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), "numpy.libs")
    )


pip_only = pytest.mark.skipif(
    not is_pip_numpy(), reason="numpy is not the pip wheel with bundled OpenBLAS"
)


@needs_binutils
@pip_only
@pytest.mark.parametrize(
    "package,api,module,pattern,prefix",
    [
        (
            "numpy",
            "blas",
            "numpy._core._multiarray_umath",
            r"(scipy_)?cblas_dgemm(64_)?",
            "libscipy_openblas64_",
        ),
        (
            "numpy",
            "lapack",
            "numpy.linalg._umath_linalg",
            r"(scipy_)?dgesv_(64_)?",
            "libscipy_openblas64_",
        ),
        ("scipy", "blas", "scipy.linalg._fblas", r"(scipy_)?dgemm_", "libscipy_openblas-"),
        ("scipy", "lapack", "scipy.linalg._flapack", r"(scipy_)?dgesv_", "libscipy_openblas-"),
    ],
)
def test_serving_file_matches_the_dynamic_section(package, api, module, pattern, prefix):
    import importlib

    symbol, expected = serving_file_by_binutils(importlib.import_module(module), pattern)
    assert os.path.basename(expected).startswith(prefix)
    b = next(b for b in bindings() if (b.package, b.api) == (package, api))
    assert b.error is None
    assert b.serving_file == expected
    assert b.library.filepath == expected
    assert b.library.vendor == "openblas"
    assert b.library.api == api


@pip_only
def test_two_openblas_copies_match_threadpoolctl():
    tp = {
        os.path.realpath(d["filepath"]): d
        for d in threadpool_info()
        if d["internal_api"] == "openblas"
    }
    assert len(tp) == 2, "pip numpy and pip scipy each ship one OpenBLAS"
    ours = {lib.filepath: lib for lib in inventory() if lib.vendor == "openblas"}
    assert set(ours) == set(tp)
    for path, lib in ours.items():
        assert lib.version == tp[path]["version"]
        assert lib.threading_layer == tp[path]["threading_layer"]
        assert lib.architecture == tp[path]["architecture"]
        assert lib.num_threads == tp[path]["num_threads"]
        assert lib.control == "runtime" and lib.threadpoolctl_sees is True
    # numpy's and scipy's bindings point at different copies
    files = {(b.package, b.api): b.library.filepath for b in bindings()}
    assert files[("numpy", "blas")] != files[("scipy", "blas")]
    assert {files[("numpy", "blas")], files[("scipy", "blas")]} == set(tp)


def test_inventory_is_a_subset_of_the_mapped_files():
    maps = set(mapped())
    for lib in inventory():
        assert lib.filepath in maps
    assert set(loaded_paths()) <= maps


def test_non_blas_libraries_have_no_family():
    libc = next(p for p in mapped() if re.search(r"/libc[.-]", p))
    assert family_of(libc, own_only=True) is None


def test_extension_file_does_not_import_the_package(tmp_path):
    # scipy.linalg's Python code is what makes `import scipy.linalg` slow; detection needs only the file
    code = (
        "import sys, blastune.facts.detect as d; p = d.extension_file('scipy.linalg._fblas'); "
        "print(p, 'scipy.linalg' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=60
    )
    assert out.returncode == 0, out.stderr
    path, imported = out.stdout.split()
    assert os.path.realpath(path) == os.path.realpath(scipy.linalg._fblas.__file__)
    assert imported == "False"
    with pytest.raises(ImportError):
        extension_file("scipy.linalg._no_such_module")


CHILD = r"""
import json, os, sys
import numpy, scipy.linalg
from threadpoolctl import threadpool_info, threadpool_limits
import blastune
limit = os.environ.get("H_LIMIT")
ctx = threadpool_limits(int(limit), user_api="blas") if limit else None
d = blastune.info().to_dict()
tp = {os.path.realpath(x["filepath"]): x["num_threads"] for x in threadpool_info() if x["user_api"] == "blas"}
print(json.dumps({"ours": {b["library"]["filepath"]: b["library"]["num_threads"] for b in d["bindings"]}, "tp": tp}))
"""


def run_child(**env):
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env({k: v for k, v in env.items()}, threads=None),
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pip_only
def test_requested_thread_count_is_reported_back_from_env():
    r = run_child(OPENBLAS_NUM_THREADS="1")
    assert len(r["ours"]) == 2 and set(r["ours"].values()) == {1}
    assert r["ours"] == {k: v for k, v in r["tp"].items() if k in r["ours"]}


@pip_only
def test_thread_count_is_queried_live_not_read_from_env():
    # the env says nothing; a run-time limit of 1 (threadpoolctl's) must be what blastune reports
    r = run_child(H_LIMIT="1")
    assert set(r["ours"].values()) == {1}
    r = run_child()
    assert r["ours"] == {k: v for k, v in r["tp"].items() if k in r["ours"]}


def test_registering_with_threadpoolctl_keeps_its_output_plain_and_unduplicated():
    code = (
        "import json, numpy, scipy.linalg, threadpoolctl, blastune\n"
        "before = threadpoolctl.threadpool_info()\n"
        "blastune.info()\n"
        "after = threadpoolctl.threadpool_info()\n"
        "print(json.dumps({'before': before, 'after': after}))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=120
    )
    assert r.returncode == 0, r.stderr  # json.dumps would fail on a non-plain attribute
    d = json.loads(r.stdout)
    paths = [x["filepath"] for x in d["after"]]
    assert len(paths) == len(set(paths))
    # the pip wheels' OpenBLAS copies are threadpoolctl's own business: blastune adds nothing here
    assert sorted(paths) == sorted(x["filepath"] for x in d["before"])
