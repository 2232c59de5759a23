"""`blastune layout`, `env/run --pin`, `run --copies`, and doctor's big-machine checks, as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from blastune.cli import app
from conftest import child_env

TREES = Path(__file__).resolve().parent / "data" / "sysfs"
BLASTUNE = shutil.which("blastune")
CPUS = sorted(os.sched_getaffinity(0))
needs_console_script = pytest.mark.skipif(
    BLASTUNE is None, reason="blastune console script not on PATH"
)
needs_two_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="needs 2 CPUs in the affinity mask")
TOPOLOGY_CHECKS = {
    "numa-spread",
    "smt-as-cores",
    "hybrid-cores",
    "jobs-over-physical",
    "affinity-narrower",
}


def blastune(*args, tree=None, extra=None, threads=1, timeout=120):
    env = child_env({"COLUMNS": "100", **(extra or {})}, threads=threads)
    if tree:
        env["BLASTUNE_SYSFS_ROOT"] = str(TREES / tree)
    return subprocess.run(
        [BLASTUNE, *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@needs_console_script
def test_layout_jobs_8_on_the_64_core_epyc():
    res = blastune("layout", "--jobs", "8", tree="epyc-2s64c")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert (
        lines[0] == "topology: 2 sockets × 1 NUMA node × 8 L3 domains × 4 cores × 2 SMT = 128 CPUs"
    )
    assert "8 job(s) x 8 thread(s), each pinned to its own CPUs (physical cores only)" in lines
    assert lines[
        lines.index("8 job(s) x 8 thread(s), each pinned to its own CPUs (physical cores only)") + 1
    ].split() == ["job", "CPUs", "threads", "domain"]
    head = lines.index("8 job(s) x 8 thread(s), each pinned to its own CPUs (physical cores only)")
    rows = [line.split(None, 3) for line in lines[head + 3 : head + 11]]
    assert [r[:3] for r in rows] == [[str(i), f"{8 * i}-{8 * i + 7}", "8"] for i in range(8)]
    assert rows[0][3] == "L3 #0-#1, NUMA 0" and rows[7][3] == "L3 #14-#15, NUMA 1"
    assert lines[-2:] == [
        "left idle: 64 CPU(s)",
        "  64 SMT sibling CPUs (64-127): physical cores first; --smt uses them",
    ]
    assert max(map(len, lines)) <= 100


@needs_console_script
def test_layout_json_and_topology_view():
    res = blastune("layout", "--jobs", "3", "--json", tree="intel-hybrid-6p8e")
    data = json.loads(res.stdout)
    assert data["schema"] == "blastune.layout/1" and data["threads_per_job"] == 4
    assert [s["cpus"] for s in data["sets"]] == ["0,2,4,6", "12-15", "16-19"]
    assert data["idle"] == "1,3,5,7-11" and len(data["idle_reasons"]) == 2
    res = blastune("layout", tree="cpuset-12-of-128")
    assert res.returncode == 0, res.stderr
    assert "limited by: cgroup cpuset 6-11,70-75 (cpuset.cpus.effective)" in res.stdout
    assert [
        line.split()[:4] for line in res.stdout.splitlines() if line.startswith("L3 domain")
    ] == [["L3", "domain", "1", "6-7,70-71"], ["L3", "domain", "2", "8-11,72-75"]]
    data = json.loads(blastune("layout", "--json", tree="epyc-1s16c-nps4").stdout)
    assert data["schema"] == "blastune.topology/1" and len(data["numa_nodes"]) == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["layout", "--jobs", "0"], "invalid job count 0"),
        (["layout", "--jobs", "3"], "3 pinned jobs need at least 3 physical cores"),
        (["layout", "--smt"], "--smt plans jobs: give --jobs N with it"),
        (["env", "--job-index", "1"], "--job-index goes with --pin"),
        (["env", "--smt"], "--smt goes with --pin"),
        (["env", "--pin", "-t", "2"], "--pin sets each job's threads to its CPU count"),
        (
            ["env", "--pin", "--jobs", "2", "--job-index", "2"],
            "invalid --job-index 2: must be 0 to 1 for 2 jobs",
        ),
        (["run", "--pin", "--auto", "--", "true"], "not --auto"),
        (["env", "--pin", "--shell", "slurm"], "--pin plans CPUs of the machine it runs on"),
        (["run", "--copies", "2", "-t", "1", "--", "true"], "--copies N sets the jobs"),
        (["run", "--copies", "2", "--pin"], "no command given"),
        (["run", "--copies", "0", "--", "true"], "invalid --copies 0"),
    ],
)
def test_bad_pin_options_are_one_line_exit_2(args, message):
    if len(CPUS) != 2 and args[:3] == ["layout", "--jobs", "3"]:
        pytest.skip("written for 2 usable CPUs")
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("blastune: error:") and message in lines[0], (
        lines
    )


@needs_console_script
def test_env_pin_on_captured_machines():
    res = blastune("env", "--jobs", "8", "--pin", "--job-index", "3", tree="epyc-2s64c")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "export OPENBLAS_NUM_THREADS=8" in lines and "export OMP_NUM_THREADS=8" in lines
    assert "export OMP_PLACES='{24}:8'" in lines and "export OMP_PROC_BIND=close" in lines
    assert lines[-1] == "taskset -cp 24-31 $$ >/dev/null"
    res = blastune(
        "env", "--jobs", "4", "--pin", "--job-index", "1", "--smt", "--json", tree="epyc-1s16c-nps4"
    )
    data = json.loads(res.stdout)
    assert data["threads"] == 8 and data["env"]["OMP_PLACES"] == "{4}:4,{20}:4"
    assert data["pin"]["cpus"] == "4-7,20-23" and data["pin"]["taskset"] == "taskset -c 4-7,20-23"
    assert data["reason"] == "job 1 of 4 pinned to CPUs 4-7,20-23 (L3 #1, NUMA 1): 8 thread(s)"
    res = blastune("env", "--pin", "--shell", "fish", tree="cpuset-12-of-128")
    assert res.stdout.splitlines()[-1] == "taskset -cp 6-11 $fish_pid >/dev/null;"
    assert "set -gx OPENBLAS_NUM_THREADS 6;" in res.stdout


@needs_console_script
@needs_two_cpus
def test_env_pin_really_pins_a_bash_script():
    script = (
        f'eval "$({BLASTUNE} env --jobs 2 --pin --job-index 1)"; grep Cpus_allowed_list /proc/self/status; '
        'echo "$OPENBLAS_NUM_THREADS $OMP_PLACES"'
    )
    res = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=child_env(), timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["Cpus_allowed_list:", str(CPUS[1]), "1", f"{{{CPUS[1]}}}"]


SHOW = (
    "import os, json; s = open('/proc/self/status').read(); "
    "os.write(1, (json.dumps({'mask': s.split('Cpus_allowed_list:')[1].split()[0], "
    "'threads': os.environ['OPENBLAS_NUM_THREADS'], 'index': os.environ.get('BLASTUNE_JOB_INDEX'), "
    "'places': os.environ.get('OMP_PLACES')}) + '\\n').encode())  # one write: copies share the pipe"
)


@needs_console_script
@needs_two_cpus
def test_run_pin_runs_the_command_on_its_cpus():
    res = blastune(
        "run", "--jobs", "2", "--pin", "--job-index", "1", "--", sys.executable, "-c", SHOW
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {
        "mask": str(CPUS[1]),
        "threads": "1",
        "index": None,
        "places": f"{{{CPUS[1]}}}",
    }


@needs_console_script
@needs_two_cpus
def test_run_copies_pin_one_copy_per_cpu_set_and_the_worst_status():
    res = blastune("run", "--copies", "2", "--pin", "--json", "--", sys.executable, "-c", SHOW)
    assert res.returncode == 0, res.stderr
    got = sorted((json.loads(line) for line in res.stdout.splitlines()), key=lambda d: d["index"])
    assert got == [
        {"mask": str(CPUS[i]), "threads": "1", "index": str(i), "places": f"{{{CPUS[i]}}}"}
        for i in (0, 1)
    ]
    summary = json.loads(res.stderr.strip().splitlines()[-1])
    assert [c["cpus"] for c in summary["copies"]] == [str(CPUS[0]), str(CPUS[1])]
    # the worst exit status wins; a copy killed by a signal counts as 128 + N
    code = (
        "import os, signal; i = int(os.environ['BLASTUNE_JOB_INDEX']); (os.kill(os.getpid(), signal.SIGTERM) "
        "if i == 1 else None); raise SystemExit(3)"
    )
    res = blastune("run", "--copies", "2", "--pin", "--", sys.executable, "-c", code)
    assert res.returncode == 143, res.stderr
    res = blastune(
        "run",
        "--copies",
        "2",
        "--",
        sys.executable,
        "-c",
        "import os; raise SystemExit(int(os.environ['BLASTUNE_JOB_INDEX']) + 4)",
    )
    assert res.returncode == 5


WAITER = (
    "import os, signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: (os.write(1, ('TERM ' + os.environ['BLASTUNE_JOB_INDEX'] + '\\n').encode()), "
    "sys.exit(0)))\n"
    "os.write(1, f'ready {os.getpid()}\\n'.encode())  # one write: the copies share the file\n"
    "time.sleep(60)\n"
)


def _start_copies(tmp_path):
    out = tmp_path / "out.txt"
    proc = subprocess.Popen(
        [BLASTUNE, "run", "--copies", "2", "--pin", "--", sys.executable, "-c", WAITER],
        stdout=open(out, "a"),
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while out.read_text().count("ready") < 2:
        assert time.monotonic() < deadline, out.read_text()
        time.sleep(0.05)
    pids = [
        int(line.split()[1]) for line in out.read_text().splitlines() if line.startswith("ready")
    ]
    return proc, out, pids


def _gone(pid, within=10.0) -> bool:
    """Ended: no such process, or a zombie waiting for a reaper (an orphan's new parent reaps it late)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


@needs_console_script
@needs_two_cpus
@pytest.mark.parametrize("to_group", [False, True])
def test_run_copies_forwards_sigterm_once(tmp_path, to_group):
    """SIGTERM to blastune alone, or to its whole group (what timeout and Slurm do): each copy gets it once."""
    proc, out, pids = _start_copies(tmp_path)
    if to_group:
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 0  # each copy handled it and exited 0
    assert sorted(line for line in out.read_text().splitlines() if line.startswith("TERM")) == [
        "TERM 0",
        "TERM 1",
    ]
    assert all(_gone(pid) for pid in pids)


@needs_console_script
@needs_two_cpus
def test_run_copies_die_with_blastune(tmp_path):
    proc, out, pids = _start_copies(tmp_path)
    proc.kill()  # SIGKILL: no chance to clean up; PR_SET_PDEATHSIG ends the copies
    proc.wait(timeout=30)
    try:
        assert all(_gone(pid) for pid in pids)
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# --- doctor on the captured machines -----------------------------------------------------------------


def _doctor(tree, *args, **env):
    res = blastune("doctor", "--json", *args, tree=tree, extra=env, threads=None)
    assert res.returncode in (0, 2), res.stderr
    return {f["id"]: f for f in json.loads(res.stdout)["findings"] if f["id"] in TOPOLOGY_CHECKS}


@needs_console_script
def test_doctor_big_machine_findings_on_captured_trees():
    # the 2-socket EPYC, BLAS left at its default (one thread per CPU): 128 threads over 2 NUMA nodes,
    # SMT siblings counted as cores
    f = _doctor("epyc-2s64c")
    assert (
        f["numa-spread"]["severity"] == "warning"
        and "cannot fit in one NUMA node" in f["numa-spread"]["finding"]
    )
    assert (
        f["smt-as-cores"]["severity"] == "warning"
        and "more than the 64 physical cores" in f["smt-as-cores"]["finding"]
    )
    assert f["hybrid-cores"]["severity"] == "ok" and f["affinity-narrower"]["severity"] == "ok"
    # 16 jobs x 8 threads on 64 physical cores
    f = _doctor("epyc-2s64c", "--jobs", "16", OPENBLAS_NUM_THREADS="8")
    assert f["jobs-over-physical"]["severity"] == "warning"
    assert (
        "16 jobs x 8 BLAS threads (OPENBLAS_NUM_THREADS=8) = 128 threads on 64 physical cores"
        in f["jobs-over-physical"]["finding"]
    )
    assert "--jobs 16 --pin" in f["jobs-over-physical"]["fix"]
    # NPS4: 4 threads fit one node, but unpinned they may wander
    f = _doctor("epyc-1s16c-nps4", OPENBLAS_NUM_THREADS="4")
    assert f["numa-spread"]["severity"] == "info" and f["smt-as-cores"]["severity"] == "ok"
    # the hybrid laptop: threads over P- and E-cores
    f = _doctor("intel-hybrid-6p8e", OPENBLAS_NUM_THREADS="8")
    assert (
        f["hybrid-cores"]["severity"] == "warning"
        and "taskset -c 0,2,4,6,8,10" in f["hybrid-cores"]["fix"]
    )
    assert f["numa-spread"]["severity"] == "ok"
    # the 4-core desktop: 8 threads on 4 cores with SMT
    f = _doctor("desktop-4c8t", OPENBLAS_NUM_THREADS="8")
    assert (
        f["smt-as-cores"]["severity"] == "warning" and "env --threads 4" in f["smt-as-cores"]["fix"]
    )
    # the Slurm cpuset: the BLAS default counts the cpuset's 12 CPUs; 16 threads are more than it allows
    # (threads-over-cores warns, naming the cpuset; affinity-narrower does not say it again)
    f = _doctor("cpuset-12-of-128", OPENBLAS_NUM_THREADS="16")
    assert f["affinity-narrower"]["severity"] == "ok"
    assert (
        "only 12 of the machine's 128 CPUs (cgroup cpuset 6-11,70-75"
        in f["affinity-narrower"]["finding"]
    )
    assert "threads-over-cores reports it" in f["affinity-narrower"]["finding"]
    f = _doctor("cpuset-12-of-128", OPENBLAS_NUM_THREADS="6")
    assert {k: v["severity"] for k, v in f.items()} == {k: "ok" for k in TOPOLOGY_CHECKS}


@needs_console_script
def test_doctor_big_machine_checks_are_silent_here():
    """This 2-core machine has one NUMA node, no SMT, one core type and every CPU usable."""
    from blastune.facts.topology import read_topology

    t = read_topology()
    if len(t.numa_nodes) > 1 or t.smt > 1 or t.hybrid or t.limited_by:
        pytest.skip(f"this machine has what the checks look for: {t.summary()}")
    res = blastune("doctor", "--json", threads=None)
    found = {
        f["id"]: f["severity"]
        for f in json.loads(res.stdout)["findings"]
        if f["id"] in TOPOLOGY_CHECKS
    }
    assert found == {k: "ok" for k in TOPOLOGY_CHECKS}


@pytest.mark.parametrize(
    "tree, jobs, index, cpus, places",
    [
        ("epyc-2s64c", 16, 15, "60-63", "{60}:4"),
        ("epyc-1s16c-nps4", 4, 2, "8-11", "{8}:4"),
        ("intel-hybrid-6p8e", 2, 0, "12-18", "{12}:7"),
        ("desktop-4c8t", 2, 1, "2-3", "{2}:2"),
        ("cpuset-12-of-128", 3, 0, "6-7", "{6}:2"),
    ],
)
def test_env_pin_for_each_captured_machine(tree, jobs, index, cpus, places):
    res = CliRunner().invoke(
        app,
        ["env", "--jobs", str(jobs), "--pin", "--job-index", str(index), "--json"],
        env={"BLASTUNE_SYSFS_ROOT": str(TREES / tree)},
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    n = len(data["pin"]["cpu_ids"])
    assert data["pin"]["cpus"] == cpus and data["env"]["OMP_PLACES"] == places
    assert data["threads"] == n and {
        data["env"][v] for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    } == {str(n)}
    assert data["pin"]["taskset"] == f"taskset -c {cpus}"
    text = (
        CliRunner()
        .invoke(
            app,
            ["env", "--jobs", str(jobs), "--pin", "--job-index", str(index)],
            env={"BLASTUNE_SYSFS_ROOT": str(TREES / tree)},
        )
        .output
    )
    assert text.splitlines()[-1] == f"taskset -cp {cpus} $$ >/dev/null"
