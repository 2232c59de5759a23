"""``blastune slurm`` scripts submitted to a real Slurm (``sbatch --wait``), checked from the jobs'
output files.

CI starts a single-node Slurm first (.ci/slurm-up.sh: a 2-CPU node, partitions debug and short,
task/affinity, CR_Core). Without a controller that answers, every test here skips and says why.
Each job is tiny (a Python one-liner, a second at most) and asks for 1 or 2 CPUs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from blastune.facts.environment import THREAD_VARS
from conftest import child_env

BLASTUNE = shutil.which("blastune")
WAIT_S = 180  # one sbatch --wait: seconds of work, and a queue that may hold another test's job


def _slurm_unavailable() -> str | None:
    """Why jobs cannot be submitted here, or None: a bounded `scontrol ping` and `sinfo`."""
    if BLASTUNE is None:
        return "blastune console script not on PATH"
    for exe in ("sbatch", "scontrol", "sinfo", "srun"):
        if shutil.which(exe) is None:
            return f"{exe} not found (Slurm is set up by .ci/slurm-up.sh, as root)"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=5)
        if ping.returncode != 0 or "UP" not in ping.stdout:
            said = (ping.stdout + ping.stderr).strip().splitlines() or ["nothing"]
            return f"no reachable slurmctld: scontrol ping says {said[0]!r}"
        nodes = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=5
        )
    except subprocess.TimeoutExpired as exc:
        cmd = " ".join(exc.cmd)
        return f"no reachable slurmctld: {cmd} did not answer within {exc.timeout:g} s"
    states = set(nodes.stdout.split())
    if not states & {"idle", "mixed", "allocated", "completing"}:
        return f"no Slurm node can run jobs: sinfo says {sorted(states) or 'nothing'}"
    parts = subprocess.run(
        ["sinfo", "-h", "-o", "%R %c"], capture_output=True, text=True, timeout=5
    ).stdout
    rows = [ln.split() for ln in parts.splitlines() if len(ln.split()) == 2]
    cpus = {name: int(count.rstrip("+")) for name, count in rows}
    if cpus.get("short", 0) < 2:
        return (
            "this Slurm is not the test one of .ci/slurm-up.sh: the tests need a partition "
            f"'short' with at least 2 CPUs per node; sinfo says {cpus}"
        )
    return None


@pytest.fixture(scope="module", autouse=True)
def real_slurm():
    why = _slurm_unavailable()
    if why:
        pytest.skip(f"no real Slurm: {why}")


def _job_env() -> dict:
    # sbatch passes this environment to the job: blastune must be on its PATH (as a user's venv is)
    env = child_env(threads=None)
    env["PATH"] = os.path.dirname(BLASTUNE) + os.pathsep + env["PATH"]
    for var in list(env):
        if var.startswith(("SLURM_", "SBATCH_")) or var in THREAD_VARS:
            del env[var]
    return env


def _write(tmp_path, name, *args, command):
    script = tmp_path / f"{name}.sbatch"
    res = subprocess.run(
        [BLASTUNE, "slurm", "--job-name", name, *args, "--out", str(script), "--", *command],
        capture_output=True,
        text=True,
        env=_job_env(),
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return script


def _submit(tmp_path, script, *sbatch_args) -> tuple[str, list[str]]:
    """sbatch --wait the script from tmp_path; the job id and each task's output text, by index."""
    try:
        res = subprocess.run(
            ["sbatch", "--wait", *sbatch_args, str(script)],
            capture_output=True,
            text=True,
            env=_job_env(),
            cwd=tmp_path,
            timeout=WAIT_S,
        )
    except subprocess.TimeoutExpired:
        subprocess.run(["scancel", "--name", script.stem], timeout=30)
        raise
    job = re.search(r"Submitted batch job (\d+)", res.stdout)
    assert res.returncode == 0 and job, f"sbatch: {res.returncode} {res.stdout} {res.stderr}"
    outs = sorted(
        tmp_path.glob(f"{script.stem}_{job.group(1)}_*.out"),
        key=lambda p: int(p.stem.rsplit("_", 1)[1]),
    )
    return job.group(1), [p.read_text() for p in outs]


def _records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# What a task saw: thread variables, its allocation and CPUs, its partition, its arguments.
SEEN = (
    "import json, os, sys, time; t0 = time.time(); time.sleep(float(sys.argv[1])); "
    "print(json.dumps({'vars': {v: os.environ.get(v) for v in %r}, "
    "'cpus_per_task': os.environ.get('SLURM_CPUS_PER_TASK'), "
    "'task': os.environ['SLURM_ARRAY_TASK_ID'], "
    "'partition': os.environ.get('SLURM_JOB_PARTITION'), "
    "'affinity': sorted(os.sched_getaffinity(0)), "
    "'argv': sys.argv[2:], 'start': t0, 'end': time.time()}))" % (list(THREAD_VARS),)
)


def _seen(*args, sleep=0.0):
    return [sys.executable, "-c", SEEN, str(sleep), *args]


def test_each_array_task_sets_its_threads_from_the_allocation(tmp_path):
    script = _write(tmp_path, "bt-alloc", "--tasks", "2", "-c", "1", command=_seen("--seed={task}"))
    _, outs = _submit(tmp_path, script)
    assert len(outs) == 2
    for index, text in enumerate(outs):
        assert f"blastune: array task {index}: 1 BLAS thread(s)" in text
        (rec,) = _records(text)
        assert rec["task"] == str(index) and rec["argv"] == [f"--seed={index}"]
        assert rec["cpus_per_task"] == "1" and rec["vars"] == {v: "1" for v in THREAD_VARS}
        assert len(rec["affinity"]) == 1  # task/affinity: the task runs on the one CPU it was given


def test_cpus_given_to_sbatch_override_the_scripts(tmp_path):
    script = _write(tmp_path, "bt-override", "--tasks", "1", "-c", "1", command=_seen())
    assert "#SBATCH --cpus-per-task=1" in script.read_text()
    _, outs = _submit(tmp_path, script, "-c", "2")
    (rec,) = _records(outs[0])
    assert rec["cpus_per_task"] == "2" and rec["vars"] == {v: "2" for v in THREAD_VARS}
    assert len(rec["affinity"]) == 2 and "array task 0: 2 BLAS thread(s)" in outs[0]


def test_max_running_throttles_the_array(tmp_path):
    # 3 one-CPU tasks of 1 s on a 2-CPU node: without the %1 throttle two would run at once
    script = _write(
        tmp_path,
        "bt-throttle",
        "--tasks",
        "3",
        "-c",
        "1",
        "--max-running",
        "1",
        command=_seen(sleep=1.0),
    )
    assert "#SBATCH --array=0-2%1" in script.read_text()
    _, outs = _submit(tmp_path, script)
    spans = sorted((rec["start"], rec["end"]) for text in outs for rec in _records(text))
    assert len(spans) == 3
    overlaps = [(a, b) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]
    assert overlaps == [], f"tasks overlapped despite %1: {spans}"


def test_a_partition_is_where_the_job_runs(tmp_path):
    script = _write(
        tmp_path, "bt-part", "--tasks", "1", "--partition", "short", "--time", "1", command=_seen()
    )
    _, outs = _submit(tmp_path, script)
    (rec,) = _records(outs[0])
    assert rec["partition"] == "short"
    # and a partition Slurm does not have is refused at submission, not run elsewhere
    bad = _write(
        tmp_path, "bt-nopart", "--tasks", "1", "--partition", "nosuchpart", command=["true"]
    )
    res = subprocess.run(
        ["sbatch", str(bad)],
        capture_output=True,
        text=True,
        env=_job_env(),
        cwd=tmp_path,
        timeout=60,
    )
    assert res.returncode != 0 and "partition" in res.stderr.lower()


# Each worker writes its own file: srun forwards the workers' shared stdout in chunks, not lines.
WORKER = (
    "import json, os; i = os.environ['BLASTUNE_JOB_INDEX']; "
    "open(f'worker-{i}.json', 'w').write("
    "json.dumps({'index': i, 'affinity': sorted(os.sched_getaffinity(0)), "
    "'threads': os.environ['OPENBLAS_NUM_THREADS'], 'step': os.environ.get('SLURM_STEP_ID'), "
    "'task': os.environ['SLURM_ARRAY_TASK_ID']}))"
)


def test_workers_run_pinned_under_srun(tmp_path):
    script = _write(
        tmp_path,
        "bt-workers",
        "--tasks",
        "1",
        "-c",
        "2",
        "--workers",
        "2",
        command=[sys.executable, "-c", WORKER],
    )
    _, outs = _submit(tmp_path, script)
    assert "array task 0: 2 workers on 2 CPU(s), each pinned to its own cores" in outs[0]
    recs = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("worker-*.json"))]
    assert [r["index"] for r in recs] == ["0", "1"], outs[0]
    # each worker alone on one of the task's two CPUs, one BLAS thread each, inside an srun step
    assert [len(r["affinity"]) for r in recs] == [1, 1]
    assert recs[0]["affinity"] != recs[1]["affinity"]
    assert all(r["threads"] == "1" and r["task"] == "0" for r in recs)
    assert all(r["step"] not in (None, "batch") for r in recs)


def test_quotes_and_dollars_reach_the_command_literally(tmp_path):
    args = ['it\'s $HOME; `touch pwned` "$(touch pwned)"', "x$HOME;y", "{task}:{threads}", "*"]
    script = _write(tmp_path, "bt-quote", "--tasks", "1", command=_seen(*args))
    _, outs = _submit(tmp_path, script)
    (rec,) = _records(outs[0])
    assert rec["argv"] == ['it\'s $HOME; `touch pwned` "$(touch pwned)"', "x$HOME;y", "0:1", "*"]
    assert not (tmp_path / "pwned").exists()


def test_max_array_size_is_the_controllers(tmp_path):
    conf = subprocess.run(
        ["scontrol", "show", "config"], capture_output=True, text=True, timeout=30
    ).stdout
    limit = int(re.search(r"^MaxArraySize\s*=\s*(\d+)", conf, re.M).group(1))
    ok = subprocess.run(
        [BLASTUNE, "slurm", "--tasks", str(limit), "--json", "--", "true"],
        capture_output=True,
        text=True,
        env=_job_env(),
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["max_array_size"] == limit
    bad = subprocess.run(
        [BLASTUNE, "slurm", "--tasks", str(limit + 1), "--", "true"],
        capture_output=True,
        text=True,
        env=_job_env(),
        timeout=60,
    )
    assert bad.returncode == 2
    assert f"this cluster's MaxArraySize is {limit} (scontrol show config)" in bad.stderr
