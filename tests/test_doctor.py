"""blastune doctor: each condition is created for real in a child process (env vars, taskset,
LD_PRELOAD / ctypes-loaded OpenMP runtimes, a BLAS copy set to another thread count) and the
installed ``blastune doctor --json`` or ``blastune.doctor()`` must report it with the right exit status.
The BLAS-build conditions (reference, ATLAS, BLIS, OpenMP OpenBLAS, a crashing OPENBLAS_CORETYPE)
are in test_doctor_matrix.py.
"""

from __future__ import annotations

import ctypes.util
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from blastune.cli import app
from blastune.facts.cpu import cpu_info
from blastune.advise.doctor.model import Context
from blastune.advise.doctor.registry import all_checks
from blastune.advise.doctor.report import build_context, run_checks
from blastune.documents.doctor import DoctorReport, Finding
from blastune.advise.doctor.topology_checks import check_smt_as_cores
from blastune.advise.doctor.probe import run_probe
from tests.conftest import AMBIENT_OPENBLAS_TUNING, allowed_ambient_warnings, child_env, run_python

BLASTUNE = shutil.which("blastune") or ""
USABLE = len(os.sched_getaffinity(0))


def run_doctor(*args, extra=None, threads=1, prefix=()):
    """The installed console script in a child with the given environment; -> (rc, report, stderr)."""
    cmd = [*prefix, BLASTUNE, "doctor", "--json", *args]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env=child_env(extra, threads)
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def by_id(report, check_id):
    return [f for f in report["findings"] if f["id"] == check_id]


def severities(report, check_id):
    return {f["severity"] for f in by_id(report, check_id)}


pytestmark = pytest.mark.skipif(
    not BLASTUNE, reason="the blastune console script is not on PATH (pip install -e .)"
)


def test_clean_environment_runs_every_check_and_exits_0():
    rc, report, err = run_doctor("--strict")
    ids = {f["id"] for f in report["findings"]}
    assert ids == {cid for cid, _ in all_checks()}
    warned = {f["id"] for f in report["findings"] if f["severity"] in ("warning", "error")}
    assert warned <= allowed_ambient_warnings(), report["findings"]
    assert rc == report["exit_status_strict"] == (1 if warned else 0), report["findings"]
    assert severities(report, "blas-probe") == {"ok"}
    assert report["probe"]["stage"] == "done" and report["probe"]["wrong_entries"] == 0
    assert err == ""


def test_values_that_are_not_positive_integers_are_errors():
    rc, report, _ = run_doctor(
        extra={
            "OPENBLAS_NUM_THREADS": "two",
            "OMP_NUM_THREADS": "0",
            "MKL_NUM_THREADS": "-3",
            "BLIS_NUM_THREADS": "",
        }
    )
    bad = {
        f["finding"].split("=")[0] for f in by_id(report, "env-integer") if f["severity"] == "error"
    }
    assert bad == {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"}
    assert all("export " in f["fix"] for f in by_id(report, "env-integer"))
    assert rc == 2


def test_only_ascii_decimal_counts_as_a_thread_count():
    # Python's int() takes '٣' (Arabic-Indic three); the C libraries do not, so it must not pass as 3
    # threads, and '0x2' is no hex two. Blanks around a number are fine (libgomp and atoi skip them).
    rc, report, _ = run_doctor(
        extra={
            "OMP_NUM_THREADS": "\u0663",
            "OPENBLAS_NUM_THREADS": "0x2",
            "BLIS_NUM_THREADS": " 1 ",
        }
    )
    bad = {
        f["finding"].split("=")[0] for f in by_id(report, "env-integer") if f["severity"] == "error"
    }
    assert bad == {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"}
    assert "OMP_NUM_THREADS" not in " ".join(
        f["finding"] for f in by_id(report, "threads-over-cores")
    )
    assert rc == 2


def test_omp_nesting_list_is_a_valid_value():
    rc, report, _ = run_doctor(extra={"OMP_NUM_THREADS": "1,1"})
    assert severities(report, "env-integer") == {"ok"}
    assert rc == 0


def test_threads_times_jobs_above_the_cores_is_a_warning_and_strict_exits_1():
    n = str(USABLE)
    extra = {"OPENBLAS_NUM_THREADS": n, "OMP_NUM_THREADS": n}
    rc, report, _ = run_doctor("--jobs", "2", extra=extra, threads=None)
    (f,) = by_id(report, "threads-x-jobs")
    assert f["severity"] == "warning"
    assert (
        f"2 jobs x {USABLE} BLAS threads" in f["finding"]
        or "concurrent jobs alone exceed" in f["finding"]
    )
    assert "blastune env --jobs 2" in f["fix"]
    assert rc == 0
    rc_strict, _, _ = run_doctor("--jobs", "2", "--strict", extra=extra, threads=None)
    assert rc_strict == 1
    # one job with the same setting fits
    _, report1, _ = run_doctor("--jobs", "1", extra=extra, threads=None)
    assert severities(report1, "threads-x-jobs") == {"ok"}


@pytest.mark.skipif(
    shutil.which("taskset") is None or USABLE < 2, reason="needs taskset and 2+ CPUs"
)
def test_affinity_mask_smaller_than_the_thread_count():
    # taskset shrinks the affinity mask to 1 CPU; OMP_NUM_THREADS=2 asks for more than that
    rc, report, _ = run_doctor(extra={"OMP_NUM_THREADS": "2"}, prefix=("taskset", "-c", "0"))
    assert report["usable_cores"] == 1 and report["usable_basis"] == "affinity mask"
    (f,) = by_id(report, "threads-over-cores")
    assert f["severity"] == "warning"
    assert "OMP_NUM_THREADS=2" in f["finding"] and "affinity mask" in f["finding"]
    assert "--threads 1" in f["fix"]
    assert rc == 0
    # without taskset the same setting fits the 2+ cores
    _, free, _ = run_doctor(extra={"OMP_NUM_THREADS": "2"})
    assert severities(free, "threads-over-cores") == {"ok"}


def _v2_cpu_enabled(root):
    try:
        with open(f"{root}/cgroup.subtree_control") as f:
            return "cpu" in f.read().split()
    except OSError:
        return False


@pytest.fixture
def one_core_cgroup():
    """A real CPU quota of one core: a cgroup made for this test (v1 cpu or v2), removed after.

    This is the container that sees all the host's cores but may use fewer: affinity still shows
    every CPU, so the BLAS starts a thread per CPU."""
    v1, v2 = "/sys/fs/cgroup/cpu", "/sys/fs/cgroup"
    if os.path.isfile(f"{v1}/cpu.cfs_quota_us") and os.access(v1, os.W_OK):
        path, files = (
            f"{v1}/blastune-test-{os.getpid()}",
            {"cpu.cfs_quota_us": "100000", "cpu.cfs_period_us": "100000"},
        )
    elif _v2_cpu_enabled(v2) and os.access(v2, os.W_OK):
        path, files = f"{v2}/blastune-test-{os.getpid()}", {"cpu.max": "100000 100000"}
    else:
        pytest.skip(
            "no writable cgroup cpu controller (needs root and cgroup v1 cpu or v2 with cpu enabled)"
        )
    try:
        os.mkdir(path)
        for name, value in files.items():
            with open(f"{path}/{name}", "w") as f:
                f.write(value)
    except OSError as exc:
        pytest.skip(f"cannot create a cgroup here: {exc}")
    try:
        yield path
    finally:
        os.rmdir(path)


@pytest.mark.skipif(USABLE < 2, reason="needs 2+ CPUs")
def test_cgroup_quota_smaller_than_the_blas_pool(one_core_cgroup):
    # thread variables unset: OpenBLAS sizes its pool by the CPUs it sees (2), the quota allows 1
    script = f'echo $$ > {one_core_cgroup}/cgroup.procs && exec "$@"'
    rc, report, _ = run_doctor(threads=None, prefix=("sh", "-c", script, "sh"))
    assert report["usable_cores"] == 1 and "CPU quota" in report["usable_basis"]
    (f,) = by_id(report, "threads-over-cores")
    assert f["severity"] == "warning" and "openblas" in f["finding"] and "CPU quota" in f["finding"]
    assert "this process may use only 1" in f["finding"]
    assert rc == 0


def _openmp_runtimes():
    """Two different OpenMP runtimes that exist on this machine (libgomp + LLVM libomp or Intel libiomp5)."""
    gomp = ctypes.util.find_library("gomp")
    other = ctypes.util.find_library("omp") or ctypes.util.find_library("iomp5")
    if other is None:
        hits = glob.glob("/usr/lib/llvm-*/lib/libomp.so*") + glob.glob(
            f"{sys.prefix}/lib/libiomp5.so"
        )
        other = hits[0] if hits else None
    return gomp, other


def test_two_openmp_runtimes_loaded_in_the_process():
    gomp, other = _openmp_runtimes()
    if not (gomp and other):
        pytest.skip(
            f"needs libgomp and libomp/libiomp5 on disk (found {gomp}, {other}): apt install libomp5"
        )
    code = (
        f"import ctypes, json; ctypes.CDLL({gomp!r}); ctypes.CDLL({other!r})\n"
        "import blastune\n"
        "r = blastune.doctor(probe=False)\n"
        "print(json.dumps(r.to_dict()))"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    (f,) = by_id(report, "openmp-runtimes")
    assert f["severity"] == "warning"
    assert "libgomp" in f["finding"] and ("libomp" in f["finding"] or "libiomp" in f["finding"])
    # and through LD_PRELOAD into the installed command: --strict makes the warning exit 1
    rc, report2, _ = run_doctor("--strict", extra={"LD_PRELOAD": f"{gomp}:{other}"})
    assert severities(report2, "openmp-runtimes") == {"warning"}
    assert rc == 1


def test_blas_copies_with_different_thread_settings():
    # numpy's and scipy's OpenBLAS copies start at 2; set numpy's copy alone to 1 through its own API
    code = """
import json
import numpy, scipy.linalg
from blastune.facts.detect import binding
from blastune.libraries.openblas import OpenBLAS
lib = binding("numpy", "blas").library
assert lib.vendor == "openblas", lib
OpenBLAS.control(lib.filepath).set(1)
import blastune
print(json.dumps(blastune.doctor(probe=False).to_dict()))
"""
    proc = run_python(code, env=child_env({"OPENBLAS_NUM_THREADS": "2"}, threads=None))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    copies = by_id(report, "blas-copies")
    if len([lib for lib in report["libraries"] if lib["vendor"] == "openblas"]) < 2:
        pytest.skip("numpy and scipy share one BLAS here")
    (f,) = copies
    assert f["severity"] == "warning" and "different thread counts" in f["finding"]
    assert "blastune.limit" in f["fix"]


@pytest.mark.parametrize(
    "coretype, severity, words",
    [
        ("Prescott", "warning", "older kernels"),  # SSE3 kernels on any x86-64 CPU of this century
        ("NoSuchCore", "warning", "not an OpenBLAS x86-64 kernel name"),
        # OpenBLAS matches the name exactly but for case: with blanks it says 'Core not found' (measured)
        (" Prescott ", "warning", "not an OpenBLAS x86-64 kernel name"),
        ("prescott", "warning", "older kernels"),
    ],
)
def test_openblas_coretype_older_or_unknown(coretype, severity, words):
    if os.uname().machine != "x86_64":
        pytest.skip("the coretype table is x86-64")
    if "OPENBLAS_L2_SIZE" in AMBIENT_OPENBLAS_TUNING:
        pytest.skip(
            "this machine sets OPENBLAS_L2_SIZE for its own kernels; forcing another coretype "
            "beside it is no test of doctor (Prescott with a foreign L2 size hangs OpenBLAS)"
        )
    rc, report, _ = run_doctor(extra={"OPENBLAS_CORETYPE": coretype})
    (f,) = by_id(report, "openblas-coretype")
    assert f["severity"] == severity and words in f["finding"]
    assert f["fix"].startswith("unset OPENBLAS_CORETYPE")
    assert rc == 0


def test_smt_threads_above_physical_cores_is_reported():
    # This KVM guest has no SMT; the check gets a CPU description with SMT siblings instead.
    cpu = replace(cpu_info(), logical_cores=4, physical_cores=2, usable_cores=4, smt=True)
    ctx = Context(jobs=1, env={"OMP_NUM_THREADS": "4"}, cpu=cpu, cpu_flags=set())
    (f,) = check_smt_as_cores(ctx)
    assert f.severity == "warning" and "2 physical" in f.finding
    assert "OMP_NUM_THREADS=4" in f.finding
    ctx2 = Context(jobs=1, env={"OMP_NUM_THREADS": "2"}, cpu=cpu, cpu_flags=set())
    assert check_smt_as_cores(ctx2)[0].severity == "ok"


SYSFS = os.path.join(os.path.dirname(__file__), "data", "sysfs")


def test_a_cpuset_is_counted_once_physical_cores_included():
    """A Slurm step confined to 12 of a 128-CPU node's CPUs (6 cores and their siblings), as the
    live process sees it: /proc/cpuinfo counts the node's 64 cores, the topology the step's 6. Every
    finding counts the 6 (0.2.0 said both "no thread count exceeds the 64 physical cores" and "12
    threads, more than the 6 physical cores")."""
    from blastune.facts.topology import read_topology

    topo = replace(read_topology(os.path.join(SYSFS, "cpuset-12-of-128")), source="/")  # as if live
    cpu = replace(
        cpu_info(),
        logical_cores=128,
        physical_cores=64,
        usable_cores=12,
        smt=True,
        usable_basis="affinity mask",
    )
    ctx = Context(jobs=1, env={"OMP_NUM_THREADS": "12"}, cpu=cpu, cpu_flags=set(), topology=topo)
    assert (ctx.usable_cores, ctx.physical_cores, ctx.smt) == (12, 6, True)
    found = run_checks(ctx)
    assert not [f.finding for f in found if "64 physical" in f.finding]
    (smt,) = [f for f in found if f.id == "smt-as-cores"]
    assert smt.severity == "warning" and "more than the 6 physical cores" in smt.finding
    assert "--threads 6" in smt.fix
    warned = {f.id for f in found if f.severity == "warning"}
    assert warned == {"smt-as-cores"}, [(f.id, f.finding) for f in found if f.severity == "warning"]
    # two jobs of 6 fit the 12 CPUs only by sharing the 6 cores: said once, by jobs-over-physical
    ctx = replace(ctx, jobs=2, env={"OMP_NUM_THREADS": "6"})
    warned = {f.id for f in run_checks(ctx) if f.severity == "warning"}
    assert warned == {"jobs-over-physical"}


def test_doctor_on_the_cpuset_tree_counts_the_cpuset():
    """The installed doctor on the captured cpuset: the tree's 12 CPUs and 6 cores, everywhere."""
    env = {
        **child_env({"OMP_NUM_THREADS": "12"}, threads=None),
        "BLASTUNE_SYSFS_ROOT": os.path.join(SYSFS, "cpuset-12-of-128"),
    }
    proc = subprocess.run(
        [BLASTUNE, "doctor", "--json"], capture_output=True, text=True, timeout=120, env=env
    )
    report = json.loads(proc.stdout)
    assert report["usable_cores"] == 12 and "cgroup cpuset 6-11,70-75" in report["usable_basis"]
    assert severities(report, "threads-over-cores") == {"ok"}
    (smt,) = by_id(report, "smt-as-cores")
    assert smt["severity"] == "warning" and "more than the 6 physical cores" in smt["finding"]
    assert "fit the 12 CPUs" in by_id(report, "affinity-narrower")[0]["finding"]


def test_jobs_over_the_cpus_is_said_once():
    """`doctor --jobs N` with N x threads above the usable CPUs: threads-x-jobs says it, and
    jobs-over-physical (the SMT case) does not say it again."""
    usable = len(os.sched_getaffinity(0))
    rc, report, _ = run_doctor("--jobs", "2", extra={"OMP_NUM_THREADS": str(usable)}, threads=None)
    assert severities(report, "threads-x-jobs") == {"warning"}
    assert severities(report, "jobs-over-physical") == {"ok"}
    assert "threads-x-jobs reports" in by_id(report, "jobs-over-physical")[0]["finding"]


def test_table_has_a_header_for_every_column_and_counts_in_plural():
    runner = CliRunner()
    res = runner.invoke(app, ["doctor"], env={"COLUMNS": "100"})
    head = res.stdout.splitlines()[0].split()
    assert head[:2] == ["severity", "check"], res.stdout
    assert max(len(line) for line in res.stdout.splitlines()) <= 100
    tally = [line for line in res.stdout.splitlines() if "usable cores:" in line][0]
    import re

    for n, word in re.findall(r"(\d+) (errors?|warnings?)", tally):
        assert word.endswith("s") == (n != "1"), tally


def _fake_python(tmp_path, body):
    """An 'interpreter' that ignores its arguments and does ``body``: a real child that hangs or dies."""
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return str(script)


def test_probe_reports_a_signal_and_a_hang(tmp_path):
    died = run_probe(python=_fake_python(tmp_path, "kill -SEGV $$"), timeout=20)
    assert died.signal == "SIGSEGV" and not died.ok and died.returncode == -11
    hung = run_probe(python=_fake_python(tmp_path, "exec sleep 30"), timeout=1)
    assert hung.timed_out and not hung.ok and hung.returncode is None
    for probe, words in ((died, "killed by SIGSEGV"), (hung, "hung")):
        ctx = build_context(1, probe)
        (f,) = [f for f in run_checks(ctx) if f.id == "blas-probe"]
        assert f.severity == "error" and words in f.finding and f.fix


def test_exit_status_rules():
    def report(*sev):
        return DoctorReport(1, 2, "x", [Finding(s, "f", id="a") for s in sev])

    assert report("ok", "info").exit_status() == 0
    assert report("ok", "warning").exit_status() == 0
    assert report("ok", "warning").exit_status(strict=True) == 1
    assert report("warning", "error").exit_status(strict=True) == 2
    assert report("error").exit_status() == 2


def test_a_vendor_registered_late_is_checked_in_the_vendors_place_with_its_id_stamped():
    # one registry: a family registered after the checks were imported runs beside the built-in
    # vendors' checks (not appended at the end), gets the per-job thread share from the Context, and
    # its Advice is the doctor's Finding, stamped with the family's check id
    from blastune.libraries import BLAS_FAMILIES, Advice, Family, register_family

    seen = {}

    class Late(Family):
        name, api, doctor_check = "late-test-family", "blas", "late-test-check"

        @classmethod
        def advise(cls, libs, environ, want, label):
            seen["want"] = want
            return [Advice("warning", "late finding", "a fix")]

    before = list(BLAS_FAMILIES)
    try:
        register_family(Late)
        cpu = replace(cpu_info(), usable_cores=8)
        ctx = Context(jobs=3, env={}, cpu=cpu, cpu_flags=set())
        ids = [cid for cid, _ in all_checks()]
        assert ids.index("blis-default-threads") + 1 == ids.index("late-test-check")
        assert ids.index("late-test-check") < ids.index("cpu-pressure")
        (f,) = [f for f in run_checks(ctx) if f.id == "late-test-check"]
    finally:
        BLAS_FAMILIES[:] = before
    assert Advice is Finding and f == Finding("warning", "late finding", "a fix", "late-test-check")
    assert seen["want"] == ctx.fair_share == 8 // 3
    assert "late-test-check" not in [cid for cid, _ in all_checks()]


def test_cli_in_process_json_and_usage_errors(monkeypatch):
    for k, v in child_env().items():
        if k.endswith("_NUM_THREADS"):
            monkeypatch.setenv(k, v)
    runner = CliRunner()
    res = runner.invoke(app, ["doctor", "--jobs", "0"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["doctor", "--json", "--jobs", "2"])
    data = json.loads(res.stdout)
    assert data["schema"] == "blastune.doctor/1" and data["jobs"] == 2
    assert res.exit_code == data["exit_status"]
    res = runner.invoke(app, ["doctor", "--quiet"])
    assert not any(line.startswith("ok ") for line in res.stdout.splitlines())
    assert "usable cores:" in res.stdout


def test_jobs_zero_is_one_line_error_from_the_console_script():
    proc = subprocess.run(
        [BLASTUNE, "doctor", "--jobs", "0"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("blastune: error:") and len(proc.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- CPU pressure now (issue 12)


def _ctx_with_pressure(text, now=None):
    from blastune.facts.schedstat import parse_pressure

    return Context(
        jobs=1,
        env={},
        cpu=cpu_info(),
        cpu_flags=set(),
        pressure=parse_pressure(text) if text else None,
        pressure_now_pct=now,
        pressure_window_s=1.0 if now is not None else None,
    )


QUIET = "some avg10=0.31 avg60=0.50 avg300=0.20 total=1000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
BUSY = "some avg10=46.20 avg60=30.10 avg300=12.00 total=999999\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"


def test_cpu_pressure_check_reads_psi_text():
    from blastune.advise.doctor.checks import check_cpu_pressure

    (quiet,) = check_cpu_pressure(_ctx_with_pressure(QUIET))
    assert (
        quiet.id == "cpu-pressure"
        and quiet.severity == "ok"
        and "0% of the last 10 s" in quiet.finding
    )
    (busy,) = check_cpu_pressure(_ctx_with_pressure(BUSY))
    assert (
        busy.severity == "info"
        and "46% of the last 10 s" in busy.finding
        and "blastune ps" in busy.fix
    )
    # what doctor measured over its own run outranks the 10 s average
    (now,) = check_cpu_pressure(_ctx_with_pressure(QUIET, now=55.0))
    assert now.severity == "info" and "55% of the 1.0 s doctor ran" in now.finding
    (none,) = check_cpu_pressure(_ctx_with_pressure(None))
    assert none.severity == "ok" and "not available" in none.finding


@pytest.mark.skipif(
    not os.path.exists("/proc/pressure/cpu"), reason="no PSI (/proc/pressure/cpu) in this kernel"
)
def test_cpu_pressure_under_a_real_burn():
    # more spinning processes than CPUs: some task always waits for a CPU while doctor runs
    burners = [
        subprocess.Popen(
            [sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 60: pass"]
        )
        for _ in range(USABLE + 2)
    ]
    try:
        time.sleep(1.0)
        rc, report, err = run_doctor("--jobs", "1")
    finally:
        for p in burners:
            p.kill()
            p.wait()
    (f,) = by_id(report, "cpu-pressure")
    assert f["severity"] == "info" and "other programs compete" in f["finding"], f
    assert rc == 0  # never a warning: --strict stays about configuration


def test_a_cpu_quota_narrows_the_cores_too():
    """A container with a quota of 8 CPUs on the 2-socket EPYC (128 CPUs, 64 cores, as if live):
    8 threads can run on 8 different cores, so no SMT warning; 16 are over the usable 8, said once."""
    from blastune.facts.topology import read_topology

    topo = replace(read_topology(os.path.join(SYSFS, "epyc-2s64c")), source="/")
    cpu = replace(
        cpu_info(),
        logical_cores=128,
        physical_cores=64,
        usable_cores=8,
        smt=True,
        usable_basis="cgroup v2 CPU quota (8 cores)",
    )
    ctx = Context(jobs=1, env={"OMP_NUM_THREADS": "8"}, cpu=cpu, cpu_flags=set(), topology=topo)
    assert (ctx.usable_cores, ctx.physical_cores) == (8, 8) and "quota" in ctx.usable_basis
    assert not [f.id for f in run_checks(ctx) if f.severity == "warning"]
    ctx = replace(ctx, env={"OMP_NUM_THREADS": "16"})
    assert [f.id for f in run_checks(ctx) if f.severity == "warning"] == ["threads-over-cores"]
