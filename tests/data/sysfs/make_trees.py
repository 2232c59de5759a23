#!/usr/bin/env python3
"""Write the captured sysfs trees under tests/data/sysfs/ from the documented topology of real machines.

    python tests/data/sysfs/make_trees.py [DEST]      (default: this directory)

Only the files blastune's topology reader opens are written, with the contents the Linux kernel gives
them (see README.md in this directory for where each machine's facts come from). tests/test_topology.py
regenerates the trees and checks that the checked-in copies are what this script writes.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cpulist(cpus) -> str:
    # written out here, not imported from blastune: the trees are test input, independent of the reader
    cpus = sorted(cpus)
    parts, i = [], 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        parts.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(parts)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def machine(
    root: Path, cpus: list[dict], nodes: dict[int, tuple[list[int], int]], kinds=None
) -> None:
    """cpus: one dict per logical CPU (id, package, core_id, siblings, l3); nodes: id -> (cpus, MemTotal kB)."""
    base = root / "sys/devices/system/cpu"
    ids = [c["id"] for c in cpus]
    write(base / "online", cpulist(ids))
    write(base / "possible", cpulist(ids))
    for c in cpus:
        topo = base / f"cpu{c['id']}" / "topology"
        write(topo / "physical_package_id", str(c["package"]))
        write(topo / "die_id", "0")
        write(topo / "core_id", str(c["core_id"]))
        write(topo / "thread_siblings_list", cpulist(c["siblings"]))
        write(topo / "core_cpus_list", cpulist(c["siblings"]))
        l3 = base / f"cpu{c['id']}" / "cache" / "index3"
        write(l3 / "level", "3")
        write(l3 / "type", "Unified")
        write(l3 / "shared_cpu_list", cpulist(c["l3"]))
    for node, (node_cpus, kb) in nodes.items():
        d = root / "sys/devices/system/node" / f"node{node}"
        write(d / "cpulist", cpulist(node_cpus))
        write(
            d / "meminfo",
            f"Node {node} MemTotal:       {kb} kB\nNode {node} MemFree:        {kb // 2} kB",
        )
    for name, kind_cpus in (kinds or {}).items():
        write(root / "sys/devices" / name / "cpus", cpulist(kind_cpus))


def epyc_2s64c(root: Path) -> None:
    """2x AMD EPYC 7543 (Zen 3): per socket 8 CCDs x 4 cores, one 32 MB L3 per CCD; SMT 2; NPS1.

    Linux numbers the first thread of every core first (socket 0: 0-31, socket 1: 32-63), then the
    SMT siblings (64-95, 96-127). A CCD has 8 core slots of which the 7543 enables 4, so core ids run
    0-3, 8-11, ... as on the real part."""
    cpus = []
    for cpu in range(128):
        phys = cpu % 64
        socket, local = divmod(phys, 32)
        ccd, slot = divmod(local, 4)
        first = socket * 32 + ccd * 4
        l3 = [first + i for i in range(4)] + [first + 64 + i for i in range(4)]
        cpus.append(
            {
                "id": cpu,
                "package": socket,
                "core_id": ccd * 8 + slot,
                "siblings": [phys, phys + 64],
                "l3": l3,
            }
        )
    nodes = {s: ([c for c in range(128) if (c % 64) // 32 == s], 263_921_000) for s in (0, 1)}
    machine(root, cpus, nodes)


def epyc_1s16c_nps4(root: Path) -> None:
    """AMD EPYC 7313P (Zen 3): 4 CCDs x 4 cores, 32 MB L3 each, SMT 2; NPS4 = one NUMA node per CCD."""
    cpus = []
    for cpu in range(32):
        phys = cpu % 16
        ccd, slot = divmod(phys, 4)
        l3 = [ccd * 4 + i for i in range(4)] + [ccd * 4 + 16 + i for i in range(4)]
        cpus.append(
            {
                "id": cpu,
                "package": 0,
                "core_id": ccd * 8 + slot,
                "siblings": [phys, phys + 16],
                "l3": l3,
            }
        )
    nodes = {n: ([c for c in range(32) if (c % 16) // 4 == n], 32_873_000) for n in range(4)}
    machine(root, cpus, nodes)


def intel_hybrid_6p8e(root: Path) -> None:
    """Intel Core i7-1370P (Raptor Lake, HP EliteBook 840 G10): 6 P-cores with SMT (CPUs 0-11, siblings
    adjacent), 8 E-cores without (12-19, two clusters of 4 sharing an L2), one 24 MB L3 for all."""
    cpus = []
    for cpu in range(20):
        if cpu < 12:
            siblings, core_id = [cpu - cpu % 2, cpu - cpu % 2 + 1], (cpu // 2) * 4
        else:
            siblings, core_id = [cpu], 24 + (cpu - 12)
        cpus.append(
            {
                "id": cpu,
                "package": 0,
                "core_id": core_id,
                "siblings": siblings,
                "l3": list(range(20)),
            }
        )
    machine(
        root,
        cpus,
        {0: (list(range(20)), 32_489_480)},
        kinds={"cpu_core": list(range(12)), "cpu_atom": list(range(12, 20))},
    )


def desktop_4c8t(root: Path) -> None:
    """Intel Core i7-7700 (Kaby Lake): 4 cores, SMT 2 (siblings n and n+4), one 8 MB L3."""
    cpus = [
        {
            "id": cpu,
            "package": 0,
            "core_id": cpu % 4,
            "siblings": [cpu % 4, cpu % 4 + 4],
            "l3": list(range(8)),
        }
        for cpu in range(8)
    ]
    machine(root, cpus, {0: (list(range(8)), 16_303_000)})


def cpuset_12_of_128(root: Path) -> None:
    """A Slurm step on the 2x EPYC 7543 node confined by its cgroup (v2) to 6 cores with their SMT
    siblings, 6-11 and 70-75: half of one L3 domain (cores 6-7) and all of the next (8-11).
    The machine's files are the 2-socket tree's (a symlink); the process's view is its own."""
    (root / "sys").mkdir(parents=True, exist_ok=True)
    link = root / "sys/devices"
    if not link.is_symlink():
        os.symlink("../../epyc-2s64c/sys/devices", link)
    step = "system.slice/slurmstepd.scope/job_4242/step_0"
    write(root / "proc/self/cgroup", f"0::/{step}")
    write(root / "sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids")
    write(root / "sys/fs/cgroup" / step / "cpuset.cpus.effective", "6-11,70-75")
    write(
        root / "proc/self/status",
        "Name:\tpython3\nCpus_allowed:\t...\nCpus_allowed_list:\t6-11,70-75",
    )


TREES = {
    "epyc-2s64c": epyc_2s64c,
    "epyc-1s16c-nps4": epyc_1s16c_nps4,
    "intel-hybrid-6p8e": intel_hybrid_6p8e,
    "desktop-4c8t": desktop_4c8t,
    "cpuset-12-of-128": cpuset_12_of_128,
}


def make_all(dest: Path) -> None:
    for name, build in TREES.items():
        target = dest / name
        if target.exists() or target.is_symlink():
            shutil.rmtree(target)
        build(target)


if __name__ == "__main__":
    make_all(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
