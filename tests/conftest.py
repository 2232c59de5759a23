"""Shared test helpers: run real child processes, optionally against a real BLAS of the matrix."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# A profile the user saved (blastune recommend) must not steer the tests, nor may the tests write
# into the user's cache: every test and every child it starts sees an empty, private cache.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="blastune-test-cache-")

# A shell without job control starts a background command (`pytest &` in a script) with SIGINT
# ignored, and every child inherits that: the tests that stop blastune with SIGINT would then test
# nothing. Take SIGINT back for the run, so the children start with its default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parent.parent
MATRIX_ROOT = Path(os.environ.get("BLASMATRIX_ROOT", "/tmp/blasmatrix"))
WITH_BLAS = MATRIX_ROOT / "with-blas"
MATRIX_PYTHON = MATRIX_ROOT / "venv" / "bin" / "python"
VARIANTS = (
    "openblas-pthread",
    "openblas-openmp",
    "blis-pthread",
    "blis-openmp",
    "atlas",
    "reference",
    "mkl",
)

# Some machines set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE because older OpenBLAS builds crash
# without them there. Tests never change them; a test expecting a clean doctor report must allow
# the finding doctor rightly makes about an ambient coretype.
AMBIENT_OPENBLAS_TUNING = {
    k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ
}


def allowed_ambient_warnings() -> set[str]:
    return {"openblas-coretype"} if "OPENBLAS_CORETYPE" in AMBIENT_OPENBLAS_TUNING else set()


needs_matrix = pytest.mark.skipif(
    not (WITH_BLAS.exists() and MATRIX_PYTHON.exists()),
    reason=f"BLAS matrix not installed at {MATRIX_ROOT} (run ../shared/blas-matrix/setup.sh as root)",
)


def child_env(extra=None, threads: int | None = 1) -> dict:
    """The environment for a child: repo importable; BLAS threads pinned unless the test is about them."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    for name in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "BLIS_NUM_THREADS",
        "GOTO_NUM_THREADS",
    ):
        env.pop(name, None)
    if threads is not None:
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(threads)
    env.update(extra or {})
    return env


def run_python(code: str, variant: str | None = None, env=None, timeout: float = 120, **kw):
    """Run ``python -c code`` -- the matrix's python under ``with-blas variant`` when one is given."""
    if variant is None:
        cmd = [sys.executable, "-c", code]
    else:
        cmd = [str(WITH_BLAS), variant, str(MATRIX_PYTHON), "-c", code]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else child_env(),
        **kw,
    )


BLASTUNE = shutil.which("blastune")


def blastune_env(tmp_path, **extra) -> dict:
    """A console-script child's environment: 1 BLAS thread, a private cache, 100 columns."""
    env = child_env(threads=1)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["COLUMNS"] = "100"
    env.update(extra)
    return env


def run_blastune(args, tmp_path, **extra):
    """The installed console script with ``args`` in ``tmp_path``, no stdin; -> CompletedProcess."""
    return subprocess.run(
        [BLASTUNE, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=blastune_env(tmp_path, **extra),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def jobs_sandbox(monkeypatch, tmp_path):
    """For tests that run jobs in this process: tests/ importable (jobfuncs), a private profile cache,
    1 BLAS thread (several BLAS processes on 2 cores crawl otherwise)."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        monkeypatch.setenv(name, "1")
