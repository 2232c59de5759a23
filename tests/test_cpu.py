"""blastune.cpu: cgroup quotas read from real (fake) cgroup trees, usable cores, SIMD level, peak basis."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess

import pytest

from blastune.facts.cpu import (
    CgroupQuota,
    cgroup_quota,
    cpu_info,
    parse_cpuinfo,
    simd_level,
    usable_cores,
)
from tests.conftest import child_env


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# ---------------------------------------------------------------- cgroup v2


def v2_tree(root, limits):
    """A unified hierarchy under ``root``; ``limits`` maps a cgroup path to its cpu.max line."""
    write(root / "cgroup.controllers", "cpuset cpu io memory pids\n")
    for rel, line in limits.items():
        write(root / rel.lstrip("/") / "cpu.max", line + "\n")


def test_v2_own_limit(tmp_path):
    v2_tree(tmp_path, {"/job": "150000 100000"})
    q = cgroup_quota(proc_cgroup="0::/job\n", root=tmp_path)
    assert q.version == 2
    assert q.quota_cores == 1.5
    assert q.source == str(tmp_path / "job" / "cpu.max")


def test_v2_nested_limits_take_the_smallest(tmp_path):
    # the parent allows 2 cores, the child says 4, the grandchild is unlimited: 2 is what we get
    v2_tree(tmp_path, {"/a": "200000 100000", "/a/b": "400000 100000", "/a/b/c": "max 100000"})
    q = cgroup_quota(proc_cgroup="0::/a/b/c\n", root=tmp_path)
    assert (q.version, q.quota_cores, q.source) == (2, 2.0, str(tmp_path / "a" / "cpu.max"))


def test_v2_inner_limit_smaller_than_outer(tmp_path):
    v2_tree(tmp_path, {"/a": "300000 100000", "/a/b": "50000 100000"})
    q = cgroup_quota(proc_cgroup="0::/a/b\n", root=tmp_path)
    assert q.quota_cores == 0.5
    assert q.source == str(tmp_path / "a" / "b" / "cpu.max")


def test_v2_unlimited(tmp_path):
    v2_tree(tmp_path, {"/a": "max 100000", "/a/b": "max 100000"})
    q = cgroup_quota(proc_cgroup="0::/a/b\n", root=tmp_path)
    assert q.version == 2 and q.quota_cores is None


# ---------------------------------------------------------------- cgroup v1

V1_PROC = "12:pids:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n"


def test_v1_quota(tmp_path):
    d = tmp_path / "cpu,cpuacct" / "docker" / "abc"
    write(d / "cpu.cfs_quota_us", "250000\n")
    write(d / "cpu.cfs_period_us", "100000\n")
    q = cgroup_quota(proc_cgroup=V1_PROC, root=tmp_path)
    assert (q.version, q.quota_cores, q.source) == (1, 2.5, str(d / "cpu.cfs_quota_us"))


def test_v1_no_quota(tmp_path):
    d = tmp_path / "cpu,cpuacct" / "docker" / "abc"
    write(d / "cpu.cfs_quota_us", "-1\n")
    write(d / "cpu.cfs_period_us", "100000\n")
    q = cgroup_quota(proc_cgroup=V1_PROC, root=tmp_path)
    assert q.version == 1 and q.quota_cores is None


def test_v1_inside_a_container_sees_its_cgroup_at_the_mount_root(tmp_path):
    # Inside a container the v1 mount shows the container's own cgroup at the root of the controller.
    d = tmp_path / "cpu"
    write(d / "cpu.cfs_quota_us", "50000\n")
    write(d / "cpu.cfs_period_us", "100000\n")
    q = cgroup_quota(proc_cgroup="3:cpu:/docker/abc\n", root=tmp_path)
    assert q.quota_cores == 0.5


def test_v1_parent_quota_binds_an_unlimited_child(tmp_path):
    # issue 11 item 8: a Slurm job or systemd slice limited to 1 core, our own cgroup unlimited
    base = tmp_path / "cpu,cpuacct"
    for rel, quota in (
        ("", "-1"),
        ("slurm", "-1"),
        ("slurm/job_7", "100000"),
        ("slurm/job_7/step_0", "-1"),
    ):
        write(base / rel / "cpu.cfs_quota_us", quota + "\n")
        write(base / rel / "cpu.cfs_period_us", "100000\n")
    q = cgroup_quota(proc_cgroup="4:cpu,cpuacct:/slurm/job_7/step_0\n", root=tmp_path)
    assert (q.version, q.quota_cores, q.source) == (
        1,
        1.0,
        str(base / "slurm" / "job_7" / "cpu.cfs_quota_us"),
    )
    assert usable_cores([0, 1], q) == (1, "cgroup v1 CPU quota (1 cores)")


def test_v1_tightest_of_own_and_parent_quota(tmp_path):
    base = tmp_path / "cpu"
    for rel, quota in (("a", "300000"), ("a/b", "150000")):
        write(base / rel / "cpu.cfs_quota_us", quota + "\n")
        write(base / rel / "cpu.cfs_period_us", "100000\n")
    assert cgroup_quota(proc_cgroup="3:cpu:/a/b\n", root=tmp_path).quota_cores == 1.5
    write(base / "a" / "cpu.cfs_quota_us", "50000\n")
    assert cgroup_quota(proc_cgroup="3:cpu:/a/b\n", root=tmp_path).quota_cores == 0.5


def test_no_cgroup_information(tmp_path):
    assert cgroup_quota(proc_cgroup="", root=tmp_path) == CgroupQuota()
    # a v2 line but no unified hierarchy mounted at root
    assert cgroup_quota(proc_cgroup="0::/x\n", root=tmp_path).quota_cores is None


# ---------------------------------------------------------------- usable cores


def test_usable_cores_is_the_smallest_of_affinity_and_quota():
    assert usable_cores([0, 1, 2, 3], CgroupQuota(2, 1.5, "f"))[0] == 2  # quota rounds up
    n, basis = usable_cores([0, 1, 2, 3], CgroupQuota(1, 0.2, "f"))
    assert n == 1 and "cgroup v1" in basis
    n, basis = usable_cores([3], CgroupQuota(2, 8.0, "f"))
    assert n == 1 and basis == "affinity mask"
    assert usable_cores([0, 1], CgroupQuota())[0] == 2


@pytest.mark.skipif(not shutil.which("taskset"), reason="taskset (util-linux) not installed")
@pytest.mark.skipif(
    not shutil.which("blastune"), reason="blastune console script not on PATH (pip install -e .)"
)
def test_taskset_affinity_is_reported_by_the_console_script():
    out = subprocess.run(
        ["taskset", "-c", "0", "blastune", "info", "--json"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    cpu = json.loads(out.stdout)["cpu"]
    assert cpu["affinity"] == [0]
    assert cpu["usable_cores"] == 1
    assert (
        cpu["usable_basis"] in ("affinity mask", "logical cores") or "cgroup" in cpu["usable_basis"]
    )
    assert cpu["logical_cores"] == os.cpu_count()


# ---------------------------------------------------------------- SIMD, clock, peak


def test_simd_level_table():
    assert simd_level({"sse2", "sse4_2", "avx", "avx2", "fma", "avx512f"}) == "avx512"
    assert simd_level({"sse2", "sse4_2", "avx", "avx2", "fma"}) == "avx2"
    assert (
        simd_level({"sse2", "sse4_2", "avx", "avx2"}) == "avx"
    )  # AVX2 without FMA: no FMA units to count
    assert simd_level({"fp", "asimd"}) == "neon"
    assert simd_level(set()) == "unknown"


def test_parse_cpuinfo_splits_per_cpu():
    text = "processor\t: 0\nmodel name\t: X\n\nprocessor\t: 1\nmodel name\t: X\n"
    cpus = parse_cpuinfo(text)
    assert [c["processor"] for c in cpus] == ["0", "1"]


def test_cpu_info_agrees_with_the_kernel():
    c = cpu_info()
    assert c.logical_cores == os.cpu_count()
    assert c.affinity == sorted(os.sched_getaffinity(0))
    assert 1 <= c.usable_cores <= len(c.affinity)
    flags = set()
    if os.path.exists("/proc/cpuinfo"):
        for line in open("/proc/cpuinfo"):
            if line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
                break
    if "avx512f" in flags:
        assert c.simd == "avx512"
    elif {"avx2", "fma"} <= flags:
        assert c.simd == "avx2"
    if shutil.which("lscpu"):
        rows = subprocess.run(["lscpu", "-p=core,socket"], capture_output=True, text=True).stdout
        cores = {line for line in rows.splitlines() if line and not line.startswith("#")}
        assert c.physical_cores == len(cores)
    if c.peak_gflops_per_core is not None:
        # the stated basis is the arithmetic that was done
        assert c.peak_gflops_per_core == pytest.approx(
            c.flops_per_cycle_fp64 * c.clock_mhz / 1000, abs=0.06
        )
        assert c.peak_gflops_total == pytest.approx(
            c.peak_gflops_per_core * c.usable_cores, rel=0.01
        )
        assert (
            f"{c.flops_per_cycle_fp64} FP64 FLOPs/cycle" in c.peak_basis
            and c.clock_source in c.peak_basis
        )
    assert math.isfinite(c.clock_mhz or 0.0)


@pytest.mark.parametrize("line", ["", "abc 100000", "150000 0", "150000 xyz", "-5 100000"])
def test_v2_unreadable_cpu_max_is_no_quota_not_a_crash(tmp_path, line):
    # a half-written, foreign or hand-edited file must not take `blastune info` down
    v2_tree(tmp_path, {"/job": line, "/": "100000 100000"})
    q = cgroup_quota(proc_cgroup="0::/job\n", root=tmp_path)
    assert q.version == 2 and q.quota_cores == 1.0  # the parent's sane limit still counts


@pytest.mark.parametrize("quota,period", [("abc", "100000"), ("250000", "0"), ("250000", "")])
def test_v1_unreadable_quota_is_no_quota_not_a_crash(tmp_path, quota, period):
    d = tmp_path / "cpu,cpuacct" / "docker" / "abc"
    write(d / "cpu.cfs_quota_us", quota + "\n")
    write(d / "cpu.cfs_period_us", period + "\n")
    q = cgroup_quota(proc_cgroup=V1_PROC, root=tmp_path)
    assert q.version == 1 and q.quota_cores is None
