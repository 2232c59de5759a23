"""``blastune.info()`` and ``blastune info``: the console script, ``python -m``, CliRunner, --format,
the documented JSON schema, and what happens when scipy is absent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import blastune
from blastune.cli import app
from blastune.facts.info import INFO_SCHEMA
from tests.conftest import child_env

needs_script = pytest.mark.skipif(
    not shutil.which("blastune"), reason="blastune console script not on PATH (pip install -e .)"
)

# Every variable the issue names must appear in env, set or not.
ISSUE_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "MKL_NUM_THREADS",
    "MKL_THREADING_LAYER",
    "MKL_INTERFACE_LAYER",
    "MKL_DYNAMIC",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMEXPR_MAX_THREADS",
    "OMP_PROC_BIND",
    "OMP_PLACES",
    "OMP_DYNAMIC",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "FLEXIBLAS",
)
LIB_KEYS = {
    "vendor",
    "api",
    "filepath",
    "version",
    "threading_layer",
    "architecture",
    "num_threads",
    "threads_source",
    "control",
    "control_vars",
    "per_thread",
    "notes",
    "threadpoolctl_sees",
}
VENDORS = {"openblas", "mkl", "blis", "atlas", "reference", "flexiblas", "accelerate", "unknown"}


def check_schema(d: dict) -> None:
    """The documented shape of blastune.info/1 (docs/info.md)."""
    assert d["schema"] == INFO_SCHEMA == "blastune.info/1"
    # 0.1.0's keys, all kept (later versions add keys: topology, clock)
    assert set(d) >= {
        "schema",
        "blastune_version",
        "python",
        "platform",
        "packages",
        "bindings",
        "loaded",
        "cpu",
        "env",
        "warnings",
    }
    assert d["blastune_version"] == blastune.__version__
    assert set(d["packages"]) == {"numpy", "scipy"}
    assert [(b["package"], b["api"]) for b in d["bindings"]] == [
        ("numpy", "blas"),
        ("numpy", "lapack"),
        ("scipy", "blas"),
        ("scipy", "lapack"),
    ]
    for b in d["bindings"]:
        assert set(b) == {"package", "api", "symbol", "serving_file", "library", "error"}
        assert (b["library"] is None) != (b["error"] is None)  # either an answer or the reason
        if b["library"]:
            lib = b["library"]
            assert set(lib) == LIB_KEYS
            assert lib["vendor"] in VENDORS
            assert lib["control"] in ("runtime", "env", "fixed", "unknown")
            assert lib["threads_source"] in ("queried", "env", "build", "unknown")
    for lib in d["loaded"]:
        assert set(lib) == LIB_KEYS
    for key in (
        "model",
        "logical_cores",
        "physical_cores",
        "affinity",
        "cgroup",
        "usable_cores",
        "usable_basis",
        "simd",
        "clock_mhz",
        "clock_source",
        "peak_gflops_per_core",
        "peak_gflops_total",
        "peak_basis",
    ):
        assert key in d["cpu"]
    assert set(d["cpu"]["cgroup"]) == {"version", "quota_cores", "source"}
    for var in ISSUE_VARS:
        assert var in d["env"]
    assert isinstance(d["warnings"], list)


def test_library_call_returns_plain_data():
    d = blastune.info().to_dict()
    check_schema(d)
    json.dumps(d)  # no default=: everything is plain JSON


def test_blastune_info_is_callable_after_the_module_was_imported():
    # `import blastune.info` rebinds the package attribute to the module; the call must still work
    code = "import blastune.facts.info, blastune; print(blastune.info().schema)"
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "blastune.info/1"


@needs_script
def test_console_script_json_pipes_into_json_tool():
    # exactly what a user types: blastune info --json | python -m json.tool
    r = subprocess.run(
        f"blastune info --json | {sys.executable} -m json.tool",
        shell=True,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    check_schema(json.loads(r.stdout))


def test_python_dash_m_works():
    r = subprocess.run(
        [sys.executable, "-m", "blastune", "info", "--json"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    check_schema(json.loads(r.stdout))


def test_env_values_are_reported_and_unset_is_null():
    r = subprocess.run(
        [sys.executable, "-m", "blastune", "info", "--json"],
        capture_output=True,
        text=True,
        env=child_env({"OMP_PROC_BIND": "close"}, threads=1),
        timeout=120,
    )
    env = json.loads(r.stdout)["env"]
    assert (
        env["OMP_NUM_THREADS"] == "1"
        and env["OPENBLAS_NUM_THREADS"] == "1"
        and env["OMP_PROC_BIND"] == "close"
    )
    assert env["MKL_NUM_THREADS"] is None


runner = CliRunner()


def test_cli_runner_json():
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    check_schema(json.loads(result.stdout))


def test_cli_runner_tables():
    result = runner.invoke(app, ["info", "--wide"])  # whole cells: every path appears in one piece
    assert result.exit_code == 0, result.output
    out = result.stdout
    for heading in (
        "What numpy and scipy call",
        "BLAS and OpenMP libraries loaded in this process",
        "CPU",
        "Environment",
    ):
        assert heading in out
    data = blastune.info()
    for b in data.bindings:
        if b.library:
            assert b.library.filepath in out
    assert "usable cores" in out and "peak basis" in out
    # the peak is what the stated clock allows, not a measurement, and says which clock
    assert "(nominal; clock: " in out and "nominal:" in out
    for name, pkg in data.packages.items():  # the JSON's package versions are in the text too
        assert f"{name} {pkg['version']}" in out
    for lib in data.loaded:
        assert any(lib.filepath in line and "at run time" in line for line in out.splitlines())


@pytest.mark.parametrize(
    "fmt,marker",
    [("github", "| package"), ("grid", "+====="), ("plain", "package"), ("html", "<table>")],
)
def test_format_picks_the_tabulate_style(fmt, marker):
    result = runner.invoke(app, ["info", "--format", fmt])
    assert result.exit_code == 0, result.output
    assert marker in result.stdout


@needs_script
def test_unknown_format_is_one_line_exit_2():
    r = subprocess.run(
        ["blastune", "info", "--format", "nonsense"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "blastune: error: unknown table format 'nonsense'"
    )
    assert "github" in lines[0]


# ---------------------------------------------------------------- scipy absent

HIDE_BY_NONE = "import sys; sys.modules['scipy'] = None\n"
HIDE_BY_FINDER = """
import sys
class NoScipy:
    def find_spec(self, name, path=None, target=None):
        if name == 'scipy' or name.startswith('scipy.'):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)", name=name)
sys.meta_path.insert(0, NoScipy())
"""
RUN_CLI = "from blastune.cli import main\nsys.argv = ['blastune', 'info'] + sys.argv[1:]\nmain()\n"


@pytest.mark.parametrize(
    "hide", [HIDE_BY_NONE, HIDE_BY_FINDER], ids=["sys.modules-None", "meta-path-finder"]
)
def test_no_traceback_without_scipy(hide):
    code = hide + RUN_CLI
    r = subprocess.run(
        [sys.executable, "-c", code, "--json"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    d = json.loads(r.stdout)
    check_schema(d)
    assert d["packages"]["scipy"]["version"] is None
    assert (
        "scipy" in d["packages"]["scipy"]["error"]
        and "not importable" in d["packages"]["scipy"]["error"]
    )
    for b in d["bindings"]:
        if b["package"] == "scipy":
            assert b["library"] is None and "not importable" in b["error"]
        else:
            assert b["error"] is None and b["library"]["vendor"] != "unknown"
    # the tables say why, too
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=120
    )
    assert r.returncode == 0 and "Traceback" not in r.stderr
    scipy_rows = [line for line in r.stdout.splitlines() if line.startswith("scipy ")]
    assert len(scipy_rows) == 2 and all("not importable" in line for line in scipy_rows)


def test_unloadable_extension_gives_a_reason_not_a_traceback(tmp_path):
    # a scipy whose BLAS extension cannot be dlopen()ed (a broken install): the binding says why
    pkg = tmp_path / "scipy"
    (pkg / "linalg").mkdir(parents=True)
    (pkg / "__init__.py").write_text("__version__ = '0.0-broken'\n")
    (pkg / "linalg" / "__init__.py").write_text("")
    import importlib.machinery

    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    for name in ("_fblas", "_flapack"):
        (pkg / "linalg" / (name + suffix)).write_bytes(b"not an ELF file")
    env = child_env()
    env["PYTHONPATH"] = str(tmp_path) + os.pathsep + env["PYTHONPATH"]
    r = subprocess.run(
        [sys.executable, "-m", "blastune", "info", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["packages"]["scipy"]["version"] == "0.0-broken"
    for b in d["bindings"]:
        if b["package"] == "scipy":
            assert b["library"] is None and "cannot be loaded" in b["error"]


COPIES = """
import json, sys
import numpy, scipy.linalg
import blastune
from blastune.facts.detect import binding
from blastune.libraries.openblas import OpenBLAS
lib = binding("numpy", "blas").library
if sys.argv[1] == "limit-one":
    OpenBLAS.control(lib.filepath).set(1)  # numpy's copy alone, through its own API
info = blastune.info()
(copies,) = [f for f in blastune.doctor(probe=False).findings if f.id == "blas-copies"]
print(json.dumps({"warnings": info.warnings, "copies": copies.to_dict(),
                  "openblas": [l.filepath for l in info.loaded if l.vendor == "openblas"]}))
"""


@pytest.mark.parametrize("case", ["defaults", "limit-one"])
def test_info_warning_and_doctor_blas_copies_agree(case):
    # issue 13: pip's numpy + scipy load two OpenBLAS copies; alike, that is no news; once one is
    # limited and the other not, info warns and doctor's blas-copies says the same, as a warning
    r = subprocess.run(
        [sys.executable, "-c", COPIES, case],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env({"OPENBLAS_NUM_THREADS": "2"}, threads=None),
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    if len(d["openblas"]) < 2:
        pytest.skip("only one OpenBLAS copy loaded here (the pip wheels ship two)")
    said = [w for w in d["warnings"] if "BLAS copies" in w]
    if case == "defaults":
        assert said == [] and d["copies"]["severity"] == "ok", d
        assert "reach every copy" in d["copies"]["finding"]
    else:
        (warning,) = said
        assert d["copies"]["severity"] == "warning" and d["copies"]["finding"] == warning
        assert (
            "different thread counts" in warning
            and ": 1 thread" in warning
            and ": 2 threads" in warning
        )
        for path in d["openblas"]:
            assert path in warning


def test_a_library_that_cannot_be_queried_says_why():
    # make OpenBLAS's query fail inside a child: the row stays, with the reason, and no traceback
    code = (
        "import sys, json\n"
        "from blastune.libraries.openblas import OpenBLAS\n"
        "def broken(cls, path): raise OSError('simulated: symbol lookup failed')\n"
        "OpenBLAS.describe = classmethod(broken)\n"
        "import blastune\n"
        "d = blastune.info().to_dict()\n"
        "print(json.dumps([lib for lib in d['loaded'] if lib['vendor'] == 'openblas']))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=120
    )
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    if not rows:
        pytest.skip("no OpenBLAS loaded in this environment")
    for lib in rows:
        assert lib["num_threads"] is None and lib["control"] == "unknown"
        assert lib["notes"] == ["could not be queried: OSError: simulated: symbol lookup failed"]


# ---------------------------------------------------------------- nominal peak vs a measured dgemm


def test_measured_dgemm_against_the_nominal_peak():
    from dataclasses import replace

    from blastune.facts.clock import measure_clock
    from blastune.facts.cpu import cpu_info

    cpu = cpu_info()
    if not cpu.peak_gflops_per_core:
        pytest.skip("no nominal peak on this machine (SIMD level or clock unknown)")
    real = measure_clock(cpu, size=400, repeats=3)
    assert real.error is None and real.gflops_1thread > 0
    # a machine whose stated clock were 1/1000 of this one's: the same real dgemm beats its peak,
    # and that proves a clock at least gflops / flops-per-cycle
    slow = replace(
        cpu,
        clock_mhz=cpu.clock_mhz / 1000,
        peak_gflops_per_core=round(cpu.peak_gflops_per_core / 1000, 3),
    )
    above = measure_clock(slow, size=400, repeats=3)
    assert above.above_nominal is True and "the real clock is higher" in above.message
    assert above.clock_at_least_mhz == pytest.approx(
        above.gflops_1thread / cpu.flops_per_cycle_fp64 * 1000, rel=0.01
    )
    assert above.clock_at_least_mhz > slow.clock_mhz


def test_info_measure_flag_adds_the_clock_check_and_plain_info_does_not():
    plain = json.loads(runner.invoke(app, ["info", "--json"]).stdout)
    assert plain["clock"] is None and plain["cpu"]["peak_basis"].startswith("nominal:")
    result = runner.invoke(app, ["info", "--json", "--measure"])
    assert result.exit_code == 0, result.output
    clock = json.loads(result.stdout)["clock"]
    assert clock["gflops_1thread"] > 0 and clock["message"].startswith("dgemm 1000x1000 ran at")
