"""Pinned layouts: planned on captured machines, applied for real on this one (Cpus_allowed_list)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from blastune.control.exports import render_exports
from blastune.control.pinning import (
    claim_set,
    job_set,
    layout,
    omp_places,
    pin_env,
    plan_layout,
)
from blastune.errors import BlastuneError
from blastune.facts.topology import read_topology
from conftest import child_env

TREES = Path(__file__).resolve().parent / "data" / "sysfs"
CPUS = sorted(os.sched_getaffinity(0))
needs_two_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="needs 2 CPUs in the affinity mask")


def tree(name):
    return read_topology(TREES / name)


def _disjoint_and_equal(sets, topo):
    seen = set()
    for s in sets:
        assert not seen & set(s.cpus), "CPU sets overlap"
        seen |= set(s.cpus)
        assert set(s.cpus) <= set(topo.cpus)
    assert len({s.threads for s in sets}) == 1


@pytest.mark.parametrize(
    "name",
    ["epyc-2s64c", "epyc-1s16c-nps4", "intel-hybrid-6p8e", "desktop-4c8t", "cpuset-12-of-128"],
)
@pytest.mark.parametrize("jobs", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("smt", [False, True])
def test_every_layout_is_disjoint_equal_and_says_what_is_idle(name, jobs, smt):
    topo = tree(name)
    units = len(topo.cpus) if smt else topo.physical_cores
    if jobs > units:
        with pytest.raises(BlastuneError, match=f"{jobs} pinned jobs need at least {jobs}"):
            layout(jobs, topo, smt)
        return
    lay = layout(jobs, topo, smt)
    _disjoint_and_equal(lay.sets, topo)
    assert lay.threads_per_job == units // jobs
    used = {c for s in lay.sets for c in s.cpus}
    assert set(lay.idle) == set(topo.cpus) - used
    if not smt:  # physical cores first: no job gets two siblings of one core
        for s in lay.sets:
            assert (
                len({(topo.core_of(c).socket, topo.core_of(c).core_id) for c in s.cpus})
                == s.threads
            )
    else:  # a core's siblings stay in one job whenever the job size is a whole number of cores
        if lay.threads_per_job % topo.smt == 0 and len({len(c.cpus) for c in topo.cores}) == 1:
            for s in lay.sets:
                assert all(set(topo.core_of(c).cpus) <= set(s.cpus) for c in s.cpus)
    idle_count = sum(int(r.split()[0]) for r in lay.idle_reasons)
    assert idle_count == len(lay.idle)


def test_epyc_whole_domains_first():
    topo = tree("epyc-2s64c")
    # 8 jobs: each takes two whole L3 domains (CCDs) of one NUMA node
    sets = plan_layout(8, topo)
    assert [s.cpulist for s in sets] == [
        "0-7",
        "8-15",
        "16-23",
        "24-31",
        "32-39",
        "40-47",
        "48-55",
        "56-63",
    ]
    assert all(s.whole_l3 and len(s.l3_domains) == 2 and len(s.numa_nodes) == 1 for s in sets)
    assert sets[4].domain() == "L3 #8-#9, NUMA 1"
    # 16 jobs: one whole CCD each; 2 jobs: one socket each; --smt: a CCD's 8 CPUs for each of 16 jobs
    assert all(len(s.l3_domains) == 1 and s.whole_l3 for s in plan_layout(16, topo))
    assert [s.sockets for s in plan_layout(2, topo)] == [[0], [1]]
    smt16 = plan_layout(16, topo, smt=True)
    assert smt16[0].cpulist == "0-3,64-67" and all(s.whole_l3 and s.threads == 8 for s in smt16)
    # 3 jobs of 21 cores: two stay on their socket; what does not divide is named
    lay = layout(3, topo)
    assert [s.sockets for s in lay.sets[:2]] == [[0], [1]]
    assert lay.idle_reasons == [
        "64 SMT sibling CPUs (64-127): physical cores first; --smt uses them",
        "1 core (55): 64 cores do not divide into 3 jobs of 21",
    ]


def test_nps4_one_job_per_numa_node():
    sets = plan_layout(4, tree("epyc-1s16c-nps4"), smt=True)
    assert [s.cpulist for s in sets] == ["0-3,16-19", "4-7,20-23", "8-11,24-27", "12-15,28-31"]
    assert [s.numa_nodes for s in sets] == [[0], [1], [2], [3]]


def test_hybrid_keeps_jobs_on_one_core_type_when_they_fit():
    topo = tree("intel-hybrid-6p8e")
    sets = plan_layout(3, topo)  # 3 x 4 cores: one job on P-cores, two on the E-core clusters
    assert [s.kinds for s in sets] == [["P"], ["E"], ["E"]]
    assert sets[0].cpus == [0, 2, 4, 6]
    two = plan_layout(2, topo)  # 2 x 7: 8 E-cores hold one job, the other must mix, and says so
    assert sorted(s.kinds for s in two) == [["E"], ["P", "E"]]
    assert any("P+E cores" in s.domain() for s in two)


def test_cpuset_layout_stays_inside_the_allocation():
    topo = tree("cpuset-12-of-128")
    sets = plan_layout(2, topo)
    assert {c for s in sets for c in s.cpus} <= set(range(6, 12))
    assert [s.threads for s in sets] == [3, 3]
    assert sets[0].cpus == [8, 9, 10]  # best fit: the whole L3 domain 2 holds a job of 3


def test_job_index_and_counts_are_checked():
    topo = tree("desktop-4c8t")
    assert job_set(4, 3, topo).cpus == [3]
    for bad in (4, -1, "1", True):
        with pytest.raises(BlastuneError, match="invalid --job-index"):
            job_set(4, bad, topo)
    for bad in (0, -2, 1.5):
        with pytest.raises(BlastuneError, match="invalid job count"):
            layout(bad, topo)
    with pytest.raises(BlastuneError, match=r"--smt would give 8 CPUs"):
        layout(5, topo)


def test_exports_of_a_pinned_set():
    assert omp_places([0, 1, 2, 3, 64, 66]) == "{0}:4,{64},{66}"
    env = pin_env([24, 25, 26, 27, 28, 29, 30, 31])
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "8"
    assert (
        env["OMP_PLACES"] == "{24}:8"
        and env["OMP_PROC_BIND"] == "close"
        and env["BLASTUNE_CPUS"] == "24-31"
    )
    one = {"OMP_NUM_THREADS": "1"}
    assert render_exports(one, "bash", [0, 1, 5]) == (
        "export OMP_NUM_THREADS=1\ntaskset -cp 0-1,5 $$ >/dev/null"
    )
    assert render_exports(one, "docker", [0]) == "-e OMP_NUM_THREADS=1 --cpuset-cpus=0"
    assert render_exports(one, "dotenv", [0]) == "OMP_NUM_THREADS=1"  # a file cannot pin


PINNED_CHILD = textwrap.dedent("""
    import os, sys
    import numpy as np  # OpenBLAS starts its thread pool here, before the pin
    from blastune.control.pinning import set_process_affinity
    set_process_affinity([int(sys.argv[1])])
    np.ones((300, 300)) @ np.ones((300, 300))
    masks = set()
    for tid in os.listdir("/proc/self/task"):
        status = open(f"/proc/self/task/{tid}/status").read()
        masks.add(status.split("Cpus_allowed_list:")[1].split()[0])
    print(len(os.listdir("/proc/self/task")), sorted(masks))
""")


@needs_two_cpus
def test_set_process_affinity_moves_every_thread_of_the_process():
    """A BLAS pool created before the pin is pinned too (sched_setaffinity(0) would move one thread)."""
    res = subprocess.run(
        [sys.executable, "-c", PINNED_CHILD, str(CPUS[-1])],
        capture_output=True,
        text=True,
        env=child_env(threads=2),
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    threads, masks = res.stdout.split(" ", 1)
    assert int(threads) >= 2  # the main thread and OpenBLAS's worker
    assert masks.strip() == repr([str(CPUS[-1])])


POOL = textwrap.dedent("""
    import concurrent.futures as cf, multiprocessing as mp, os, sys, time
    import numpy, blastune

    def who(_):
        time.sleep(0.2)  # so that both workers take part
        masks = {open(f"/proc/self/task/{t}/status").read().split("Cpus_allowed_list:")[1].split()[0]
                 for t in os.listdir("/proc/self/task")}
        return os.getpid(), tuple(sorted(masks)), os.environ["OPENBLAS_NUM_THREADS"], os.environ["OMP_PLACES"]

    if __name__ == "__main__":
        ctx = mp.get_context(sys.argv[1])
        with cf.ProcessPoolExecutor(2, mp_context=ctx, initializer=blastune.worker_initializer(jobs=2, pin=True)) as ex:
            seen = {r[0]: r[1:] for r in ex.map(who, range(8))}
        print(sorted(seen.values()))
""")


@needs_two_cpus
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_worker_initializer_pins_each_worker_to_its_own_cpus(tmp_path, method):
    script = tmp_path / "pool.py"
    script.write_text(POOL)
    res = subprocess.run(
        ["taskset", "-c", f"{CPUS[0]},{CPUS[1]}", sys.executable, str(script), method],
        capture_output=True,
        text=True,
        env=child_env(threads=2),
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    want = [((str(CPUS[0]),), "1", f"{{{CPUS[0]}}}"), ((str(CPUS[1]),), "1", f"{{{CPUS[1]}}}")]
    assert res.stdout.strip() == repr(want)


LIMITED = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import blastune
    def mask():
        return open("/proc/self/status").read().split("Cpus_allowed_list:")[1].split()[0]
    before = mask()
    with blastune.limit(jobs=2, pin=True) as lim:
        inside = mask()
        threads = blastune.get_threads()
        time.sleep(0.5)  # hold the claim while the sibling claims its own
    print(before, inside, lim.n, sorted(set(threads.values())), mask())
""")


@needs_two_cpus
def test_limit_pin_gives_sibling_processes_disjoint_cpus(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(LIMITED)
    both = f"{CPUS[0]},{CPUS[1]}"
    procs = [
        subprocess.Popen(
            ["taskset", "-c", both, sys.executable, str(script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(threads=2),
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    rows = sorted(o.split() for o, _ in outs)
    # taskset is the children's parent: siblings of one parent share the claim space
    for row in rows:
        assert row[0] == f"{CPUS[0]}-{CPUS[1]}" if CPUS[1] == CPUS[0] + 1 else both
        assert row[2] == "1" and row[3] == "[1]"
        assert row[4] == row[0]  # restored on exit
    assert sorted(r[1] for r in rows) == sorted({str(CPUS[0]), str(CPUS[1])})


def test_claims_are_exclusive_and_freed_when_the_holder_dies():
    token = f"test-{os.getpid()}"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from blastune.control.pinning import claim_set; "
            f"print(claim_set({token!r}, 2), flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert holder.stdout.readline().strip() == "0"
        assert claim_set(token, 2) == 1
        assert claim_set(token, 2) == 1  # held once per process
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from blastune.control.pinning import claim_set; print(claim_set({token!r}, 2))",
            ],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=60,
        )
        assert other.stdout.strip() == "None"
    finally:
        holder.kill()
        holder.wait()
    freed = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from blastune.control.pinning import claim_set; print(claim_set({token!r}, 2))",
        ],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert freed.stdout.strip() == "0"


def test_pin_arguments_are_checked():
    import blastune

    for call in (
        lambda: blastune.limit(2, jobs=None, pin=True),
        lambda: blastune.limit(1, jobs=2, pin=True),
        lambda: blastune.worker_initializer(1, pin=True),
        lambda: blastune.worker_initializer(pin=True),
    ):
        with pytest.raises(BlastuneError, match="pin=True needs jobs=N"):
            call()
    with pytest.raises(BlastuneError, match="pinned jobs need at least"):
        blastune.worker_initializer(jobs=len(read_topology().cores) + 1, pin=True)
