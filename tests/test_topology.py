"""Topology facts: the captured sysfs trees of five real machines, and this machine's own sysfs."""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from blastune.cli import app
from blastune.errors import BlastuneError
from blastune.facts.topology import format_cpulist, parse_cpulist, read_topology
from conftest import child_env

TREES = Path(__file__).resolve().parent / "data" / "sysfs"
BLASTUNE = shutil.which("blastune")

SUMMARIES = {
    "epyc-2s64c": "2 sockets × 1 NUMA node × 8 L3 domains × 4 cores × 2 SMT = 128 CPUs",
    "epyc-1s16c-nps4": "1 socket × 4 NUMA nodes × 1 L3 domain × 4 cores × 2 SMT = 32 CPUs",
    "intel-hybrid-6p8e": "1 socket × 1 NUMA node × 1 L3 domain × 14 cores (6 P × 2 SMT + 8 E) = 20 CPUs",
    "desktop-4c8t": "1 socket × 1 NUMA node × 1 L3 domain × 4 cores × 2 SMT = 8 CPUs",
    "cpuset-12-of-128": "12 of 128 CPUs: 1 socket (partly), 1 NUMA node (partly), 2 L3 domains (1 partly), "
    "6 cores × 2 SMT",
}


def tree(name: str):
    return read_topology(TREES / name)


def test_checked_in_trees_are_what_the_generator_writes(tmp_path):
    """The trees are built from documented facts by make_trees.py; nothing was edited by hand since."""
    subprocess.run(
        [sys.executable, str(TREES / "make_trees.py"), str(tmp_path)], check=True, timeout=60
    )
    for name in SUMMARIES:
        cmp = filecmp.dircmp(tmp_path / name, TREES / name)
        stack = [cmp]
        while stack:
            c = stack.pop()
            assert not c.left_only and not c.right_only and not c.diff_files, (
                name,
                c.left,
                c.left_only,
                c.right_only,
                c.diff_files,
            )
            stack += c.subdirs.values()
        assert read_topology(tmp_path / name).summary() == SUMMARIES[name]


@pytest.mark.parametrize("name", SUMMARIES)
def test_summary_of_each_captured_machine(name):
    assert tree(name).summary() == SUMMARIES[name]


def test_two_socket_epyc_levels():
    t = tree("epyc-2s64c")
    assert (
        [d.index for d in t.sockets] == [0, 1]
        and len(t.numa_nodes) == 2
        and len(t.l3_domains) == 16
    )
    assert t.physical_cores == 64 and t.smt == 2 and not t.limited_by and not t.hybrid
    assert t.numa_nodes[1].cpus == list(range(32, 64)) + list(range(96, 128))
    assert t.numa_nodes[0].memory_bytes == 263_921_000 * 1024
    # an L3 domain = one CCD: 4 cores and their siblings; core ids skip the disabled slots (0-3, 8-11, ...)
    assert t.l3_domains[1].cpus == [4, 5, 6, 7, 68, 69, 70, 71]
    assert t.core_of(64).cpus == [0, 64] and t.core_of(5).core_id == 9
    # cores in fill order: socket, NUMA node, L3 domain
    assert [c.cpus[0] for c in t.cores] == list(range(64))


def test_nps4_gives_four_numa_nodes_each_one_l3():
    t = tree("epyc-1s16c-nps4")
    assert [format_cpulist(d.cpus) for d in t.numa_nodes] == [
        "0-3,16-19",
        "4-7,20-23",
        "8-11,24-27",
        "12-15,28-31",
    ]
    assert [set(d.cpus) for d in t.numa_nodes] == [set(d.cpus) for d in t.l3_domains]


def test_hybrid_core_kinds():
    t = tree("intel-hybrid-6p8e")
    assert t.hybrid and t.kinds == {"P": list(range(12)), "E": list(range(12, 20))}
    assert [len(c.cpus) for c in t.cores if c.kind == "P"] == [2] * 6
    assert [len(c.cpus) for c in t.cores if c.kind == "E"] == [1] * 8


def test_cgroup_cpuset_narrows_the_machine():
    t = tree("cpuset-12-of-128")
    assert t.cpus == [6, 7, 8, 9, 10, 11, 70, 71, 72, 73, 74, 75]
    assert len(t.machine_cpus) == 128 and t.physical_cores == 6
    assert t.limited_by == ["cgroup cpuset 6-11,70-75 (cpuset.cpus.effective)"]
    assert [(d.index, d.whole) for d in t.l3_domains] == [(1, False), (2, True)]


def test_explicit_affinity_and_cgroup_v1(tmp_path, monkeypatch):
    t = read_topology(
        TREES / "epyc-2s64c", affinity=range(64)
    )  # e.g. taskset over the first threads
    assert (
        t.summary()
        == "2 sockets × 1 NUMA node × 8 L3 domains × 4 cores = 64 CPUs (of 128 on the machine)"
    )
    assert t.limited_by == ["affinity mask 0-63 (given)"]
    # a cgroup v1 cpuset (older Slurm, Docker on v1), its file found in a parent of our cgroup
    root = tmp_path / "v1"
    shutil.copytree(TREES / "desktop-4c8t", root, symlinks=True)
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/cgroup").write_text("3:cpuset:/slurm/uid_1/job_7\n1:cpu,cpuacct:/\n")
    (root / "sys/fs/cgroup/cpuset/slurm/uid_1").mkdir(parents=True)
    (root / "sys/fs/cgroup/cpuset/slurm/uid_1/cpuset.effective_cpus").write_text("2-3,6-7\n")
    t = read_topology(root)
    assert t.cpus == [2, 3, 6, 7] and t.physical_cores == 2
    # BLASTUNE_CGROUP_ROOT moves the cgroup mount
    elsewhere = tmp_path / "cg"
    (elsewhere / "cpuset/slurm/uid_1/job_7").mkdir(parents=True)
    (elsewhere / "cpuset/slurm/uid_1/job_7/cpuset.effective_cpus").write_text("1\n")
    monkeypatch.setenv("BLASTUNE_CGROUP_ROOT", str(elsewhere))
    assert read_topology(root).cpus == [1]


def test_cpulist_round_trip():
    assert parse_cpulist("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert format_cpulist([11, 0, 1, 2, 3, 8, 10]) == "0-3,8,10-11"
    assert parse_cpulist("") == [] and format_cpulist([]) == ""
    with pytest.raises(ValueError):
        parse_cpulist("0-3,x")


def test_this_machine_agrees_with_the_kernel():
    t = read_topology()
    assert t.source == "/"
    assert t.cpus == sorted(os.sched_getaffinity(0))
    from blastune.facts.cpu import cpu_info

    info = cpu_info()
    assert len(t.machine_cpus) == info.logical_cores
    if info.affinity == t.machine_cpus:
        assert t.physical_cores == info.physical_cores


def test_a_pinned_process_sees_only_its_cpus():
    """Real taskset: the reader narrows to the process's affinity mask."""
    code = (
        "from blastune.facts.topology import read_topology; t = read_topology(); "
        "print(t.cpus, t.limited_by, open('/proc/self/status').read().split('Cpus_allowed_list:')[1].split()[0])"
    )
    last = max(os.sched_getaffinity(0))
    res = subprocess.run(
        ["taskset", "-c", str(last), sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    if len(os.sched_getaffinity(0)) > 1:
        assert res.stdout.strip() == f"[{last}] ['affinity mask {last}'] {last}"
    else:
        assert res.stdout.strip() == f"[{last}] [] {last}"


def test_bad_root_is_one_line(tmp_path):
    res = CliRunner().invoke(app, ["layout"], env={"BLASTUNE_SYSFS_ROOT": str(tmp_path)})
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        f"blastune: error: BLASTUNE_SYSFS_ROOT={str(tmp_path)!r} holds no sys/devices/system/cpu directory: "
        "point it at the root of a captured sysfs tree"
    ]
    with pytest.raises(BlastuneError):
        read_topology(TREES / "epyc-2s64c", affinity=[500])


@pytest.mark.skipif(BLASTUNE is None, reason="blastune console script not on PATH")
def test_info_shows_the_topology_line_and_json():
    env = child_env({"BLASTUNE_SYSFS_ROOT": str(TREES / "epyc-2s64c"), "COLUMNS": "100"})
    res = subprocess.run([BLASTUNE, "info"], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    # the label column is as wide as the longest label: any run of spaces
    assert re.search(rf"^topology +{re.escape(SUMMARIES['epyc-2s64c'])}", res.stdout, re.M), (
        res.stdout
    )
    assert all(len(line) <= 100 for line in res.stdout.splitlines() if line.startswith("topology"))
    res = subprocess.run(
        [BLASTUNE, "info", "--json"], capture_output=True, text=True, env=env, timeout=120
    )
    data = json.loads(res.stdout)
    assert {
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
        "topology",
    } <= set(data)
    topo = data["topology"]
    assert topo["summary"] == SUMMARIES["epyc-2s64c"] and topo["physical_cores"] == 64
    assert [d["cpulist"] for d in topo["numa_nodes"]] == ["0-31,64-95", "32-63,96-127"]
    assert len(topo["cores"]) == 64 and topo["cores"][0]["cpus"] == [0, 64]


def test_cgroup_root_variable_reaches_the_cpu_quota_too(tmp_path, monkeypatch):
    """BLASTUNE_CGROUP_ROOT moves the cgroup mount for the quota and memory readers as for the cpuset."""
    from blastune.facts.cpu import available_memory, cgroup_quota

    (tmp_path / "job").mkdir()
    (tmp_path / "cgroup.controllers").write_text("cpu cpuset memory\n")
    (tmp_path / "job/cpu.max").write_text("150000 100000\n")
    (tmp_path / "job/memory.max").write_text(f"{64 * 2**20}\n")
    (tmp_path / "job/memory.current").write_text("0\n")
    monkeypatch.delenv("BLASTUNE_CGROUP_ROOT", raising=False)
    assert str(tmp_path) not in (
        cgroup_quota("0::/job\n").source or ""
    )  # not read without the variable
    monkeypatch.setenv("BLASTUNE_CGROUP_ROOT", str(tmp_path))
    q = cgroup_quota("0::/job\n")
    assert q.version == 2 and q.quota_cores == 1.5 and q.source == str(tmp_path / "job/cpu.max")
    room, src = available_memory("0::/job\n")
    assert room <= 64 * 2**20 and str(tmp_path) in src
