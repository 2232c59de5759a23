"""``blastune slurm``: the script parses (bash -n) and one array task's body really runs locally."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from blastune.cli import app
from blastune.facts.environment import THREAD_VARS
from conftest import child_env

BLASTUNE = shutil.which("blastune")
needs_console_script = pytest.mark.skipif(
    BLASTUNE is None, reason="blastune console script not on PATH"
)

# The command each array task runs: prints the variables and arguments it received, as JSON.
SHOW = (
    "import json, os, sys; print(json.dumps({'env': {v: os.environ.get(v) for v in %r + ['SLURM_ARRAY_TASK_ID']},"
    " 'argv': sys.argv[1:]}))" % (list(THREAD_VARS),)
)


def _script(tmp_path, *args, command=None, max_array_size=100000):
    """Write a script as a login node whose scontrol says MaxArraySize is ``max_array_size`` would:
    the answer of a real scontrol here (a test cluster's limit, no controller) must not matter."""
    out = tmp_path / "job.sh"
    cmd = command or [sys.executable, "-c", SHOW, "--seed={task}", "it's $(touch pwned); {threads}"]
    env = child_env(_fake_scontrol(tmp_path, max_array_size))
    res = subprocess.run(
        [BLASTUNE, "slurm", *args, "--out", str(out), "--", *cmd],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return out


def _run_task(script, cwd, **slurm_env):
    env = child_env(threads=None)
    for var in THREAD_VARS + ("SLURM_ARRAY_TASK_ID", "SLURM_CPUS_PER_TASK"):
        env.pop(var, None)
    env.update(slurm_env)
    res = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout), res.stderr


@needs_console_script
def test_script_is_valid_bash_with_the_array_directives(tmp_path):
    script = _script(
        tmp_path,
        "--tasks",
        "5",
        "--cpus-per-task",
        "2",
        "--time",
        "00:10:00",
        "--mem",
        "1G",
        "--job-name",
        "demo",
    )
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    text = script.read_text()
    assert text.startswith("#!/bin/bash\n")
    directives = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    for want in (
        "--array=0-4",
        "--cpus-per-task=2",
        "--time=00:10:00",
        "--mem=1G",
        "--job-name=demo",
    ):
        assert f"#SBATCH {want}" in directives
    # sbatch reads directives only up to the first command: all must come before any line of code
    code_at = next(
        i for i, line in enumerate(text.splitlines()[1:]) if line and not line.startswith("#")
    )
    assert all(text.splitlines()[1:].index(d) < code_at for d in directives)


@needs_console_script
def test_one_array_task_gets_slurms_cores_and_its_index(tmp_path):
    script = _script(tmp_path, "--tasks", "4", "-c", "2")
    # Slurm said 3 cores (not the 2 we printed): the allocation wins
    got, err = _run_task(script, tmp_path, SLURM_ARRAY_TASK_ID="3", SLURM_CPUS_PER_TASK="3")
    assert {v: got["env"][v] for v in THREAD_VARS} == {v: "3" for v in THREAD_VARS}
    assert got["env"]["SLURM_ARRAY_TASK_ID"] == "3"
    # {task} and {threads} expanded; the rest reached the program verbatim, not run by the shell
    assert got["argv"] == ["--seed=3", "it's $(touch pwned); 3"]
    assert not (tmp_path / "pwned").exists()
    assert "array task 3: 3 BLAS thread(s)" in err
    # outside Slurm (no SLURM_CPUS_PER_TASK) the printed count is the fallback
    got, _ = _run_task(script, tmp_path, SLURM_ARRAY_TASK_ID="0")
    assert {got["env"][v] for v in THREAD_VARS} == {"2"}


@needs_console_script
def test_out_never_overwrites_without_force(tmp_path):
    target = tmp_path / "job.sh"
    target.write_text("my own script\n")
    args = [BLASTUNE, "slurm", "--tasks", "2", "--out", str(target), "--", "true"]
    env = child_env(_fake_scontrol(tmp_path, 1001))  # not whatever scontrol this machine has
    res = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    # one true line: a script has nothing to --resume (the results files' wording would say so)
    assert (
        res.returncode == 2
        and res.stderr == f"blastune: error: {target} already exists: pass --force to replace it\n"
    )
    assert target.read_text() == "my own script\n"
    res = subprocess.run(
        args[:5] + [str(tmp_path)] + args[6:], capture_output=True, text=True, env=env, timeout=60
    )
    assert (
        res.returncode == 2
        and res.stderr
        == f"blastune: error: {tmp_path} is a directory: give a file name for the script\n"
    )
    res = subprocess.run(
        args[:2] + ["--force"] + args[2:], capture_output=True, text=True, env=env, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr == f"wrote {target} (2 array task(s) x 1 core): sbatch {target}\n"
    assert "#SBATCH --array=0-1" in target.read_text()


def test_json_and_auto(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _fake_scontrol(tmp_path, 1001)["PATH"])
    res = CliRunner().invoke(
        app, ["slurm", "--tasks", "3", "--auto", "--json", "--", "python", "x.py"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["schema"] == "blastune.slurm/1" and data["tasks"] == 3
    assert data["cpus_basis"].startswith("--auto")
    assert f"#SBATCH --cpus-per-task={data['cpus_per_task']}" in data["text"]
    from blastune.facts.cpu import cpu_info

    # the tests' private cache holds no profile: one job gets every usable core, and says why
    assert data["cpus_per_task"] == cpu_info().usable_cores
    assert "usable cores" in data["cpus_basis"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tasks", "0", "--", "true"], "invalid --tasks 0"),
        (["--tasks", "2", "--cpus-per-task", "0", "--", "true"], "invalid --cpus-per-task 0"),
        (["--tasks", "2", "-c", str(2**31), "--", "true"], "from 1 to 2147483647"),
        (["--tasks", "2"], "no command given"),
        (
            [
                "--tasks",
                "2",
                "--",
            ],
            "no command given",
        ),
        (["--", "true"], "--tasks"),
        (["--tasks", "2", "-c", "2", "--auto", "--", "true"], "not both"),
        (["--tasks", "2", "--time", "1h", "--", "true"], "invalid --time"),
        (["--tasks", "2", "--mem", "lots", "--", "true"], "invalid --mem"),
        (["--tasks", "2", "--job-name", "a b\n#SBATCH --x", "--", "true"], "invalid --job-name"),
        (["--tasks", "2", "--job-name", "x" * 129, "--", "true"], "use 1 to 128 letters"),
        (["--tasks", "2", "--job-name", "", "--", "true"], "invalid --job-name ''"),
        (
            ["--tasks", "99999999999", "--", "true"],
            "invalid --tasks 99999999999: must be a whole number from 1 to 4000001",
        ),
        (["--tasks", "2", "--partition", "a b", "--", "true"], "invalid --partition 'a b'"),
        (["--tasks", "2", "--partition", "", "--", "true"], "invalid --partition ''"),
        (["--tasks", "2", "--account", "x;y", "--", "true"], "invalid --account 'x;y'"),
        (["--tasks", "2", "--max-running", "0", "--", "true"], "invalid --max-running 0"),
        (["--tasks", "2", "--workers", "0", "--", "true"], "invalid --workers 0"),
        (
            ["--tasks", "2", "-c", "2", "--workers", "3", "--", "true"],
            "--workers 3 needs at least 3 cores per task",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    res = CliRunner().invoke(app, ["slurm", *args])
    assert res.exit_code == 2, res.output
    lines = (
        res.stderr.strip().splitlines()
        if hasattr(res, "stderr")
        else res.output.strip().splitlines()
    )
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("blastune: error:")


@needs_console_script
def test_bad_input_via_console_script():
    res = subprocess.run(
        [BLASTUNE, "slurm", "--tasks", "0", "--", "true"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert res.returncode == 2 and res.stdout == ""
    assert (
        res.stderr
        == "blastune: error: invalid --tasks 0: must be a whole number from 1 to 4000001\n"
    )


def test_help_reads_whole():
    """The command list shows slurm's one-line summary uncut; the options name what they take."""
    res = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "80"})
    assert "slurm      A Slurm job-array script whose tasks cap their BLAS threads.\n" in res.output
    res = CliRunner().invoke(app, ["slurm", "--help"], env={"COLUMNS": "80"})
    assert res.exit_code == 0
    for want in (
        "-n, --tasks N",
        "-c, --cpus-per-task T",
        "--time TIME",
        "--mem SIZE",
        "--job-name NAME",
        "-o, --out FILE",
        "    blastune slurm --tasks 100 -c 4 -- python fit.py --seed={task} > fit.sbatch\n",
    ):
        assert want in res.output, want


# --- issue 14: real allocations ----------------------------------------------------------------------


def _fake_scontrol(tmp_path, max_array_size):
    """A stand-in for scontrol on a cluster: prints the lines of `scontrol show config` we read."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "scontrol"
    exe.write_text(
        '#!/bin/sh\n[ "$1 $2" = "show config" ] || exit 1\n'
        "printf 'Configuration data as of 2024-05-01T10:00:00\\nMaxArraySize            = %s\\n"
        f"MaxJobCount             = 10000\\n' {max_array_size}\n"
    )
    exe.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


@needs_console_script
def test_partition_account_and_throttle_directives(tmp_path):
    script = _script(
        tmp_path,
        "--tasks",
        "100",
        "--partition",
        "short,long",
        "--account",
        "proj-42",
        "--max-running",
        "10",
        "-c",
        "4",
    )
    directives = [line for line in script.read_text().splitlines() if line.startswith("#SBATCH")]
    for want in (
        "--array=0-99%10",
        "--partition=short,long",
        "--account=proj-42",
        "--cpus-per-task=4",
    ):
        assert f"#SBATCH {want}" in directives
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)


@needs_console_script
def test_array_size_against_the_clusters_max_array_size(tmp_path):
    env = child_env(_fake_scontrol(tmp_path, 500))
    ok = subprocess.run(
        [BLASTUNE, "slurm", "--tasks", "500", "--json", "--", "true"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["max_array_size"] == 500 and data["max_array_size_source"] == "scontrol show config"
    bad = subprocess.run(
        [BLASTUNE, "slurm", "--tasks", "501", "--", "true"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == (
        "blastune: error: --tasks 501 needs array indices up to 500, but this cluster's "
        "MaxArraySize is 500 (scontrol show config): indices must stay below it; split the work "
        "into arrays of at most 500 tasks\n"
    )
    # no scontrol (a laptop, a login node without Slurm tools): above Slurm's default 1001 warns.
    # (blastune needs nothing from PATH but scontrol: a PATH of the venv alone hides a real one.)
    # COLUMNS wide: a warning is one message, wrapped to the terminal only where one is that narrow
    env = child_env({"PATH": os.path.dirname(sys.executable), "COLUMNS": "1000"})
    if shutil.which("scontrol", path=env["PATH"]):
        pytest.skip("an scontrol is installed beside this Python")
    res = subprocess.run(
        [BLASTUNE, "slurm", "--tasks", "1001", "--", "true"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert res.returncode == 0 and res.stderr == ""
    res = subprocess.run(
        [BLASTUNE, "slurm", "--tasks", "1002", "--", "true"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert res.returncode == 0 and "#SBATCH --array=0-1001" in res.stdout
    assert res.stderr.startswith(
        "blastune: warning: --tasks 1002 is above Slurm's default MaxArraySize of 1001"
    )
    assert len(res.stderr.splitlines()) == 1


@needs_console_script
def test_threads_come_from_the_allocation_at_run_time(tmp_path):
    script = _script(tmp_path, "--tasks", "4", "-c", "2")
    # no SLURM_CPUS_PER_TASK (sbatch without -c): this node's entry of SLURM_JOB_CPUS_PER_NODE
    got, err = _run_task(
        script, tmp_path, SLURM_ARRAY_TASK_ID="1", SLURM_JOB_CPUS_PER_NODE="6(x2),4"
    )
    assert {got["env"][v] for v in THREAD_VARS} == {"6"} and "array task 1: 6 BLAS thread(s)" in err
    got, _ = _run_task(script, tmp_path, SLURM_ARRAY_TASK_ID="1", SLURM_JOB_CPUS_PER_NODE="12")
    assert {got["env"][v] for v in THREAD_VARS} == {"12"}
    # SLURM_CPUS_PER_TASK wins over the node count
    got, _ = _run_task(script, tmp_path, SLURM_CPUS_PER_TASK="3", SLURM_JOB_CPUS_PER_NODE="12")
    assert {got["env"][v] for v in THREAD_VARS} == {"3"}
    # a value no BLAS can take stops the task with one line, before the command runs
    env = child_env(threads=None)
    env.update(SLURM_CPUS_PER_TASK="0")
    res = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == "blastune: cannot read a CPU count from Slurm: '0'\n"


SHOW_WORKER = (
    "import json, os; s = open('/proc/self/status').read(); "
    "os.write(1, (json.dumps([os.environ['BLASTUNE_JOB_INDEX'], s.split('Cpus_allowed_list:')[1].split()[0], "
    "os.environ['OPENBLAS_NUM_THREADS'], os.environ['SLURM_ARRAY_TASK_ID']]) + '\\n').encode())"
)


@needs_console_script
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs in the affinity mask")
def test_a_task_with_several_workers_pins_each(tmp_path):
    script = _script(
        tmp_path,
        "--tasks",
        "3",
        "-c",
        "2",
        "--workers",
        "2",
        command=[sys.executable, "-c", SHOW_WORKER],
    )
    text = script.read_text()
    # blastune from the job's PATH, not the interpreter that wrote the script
    assert "--cpu-bind=cores" in text and '"${LAUNCH[@]}"} blastune run --copies 2 --pin --' in text
    assert f"{sys.executable} -m" not in text
    cpus = sorted(os.sched_getaffinity(0))[:2]
    env = child_env(threads=None)
    env.update(SLURM_ARRAY_TASK_ID="2", SLURM_CPUS_PER_TASK="2")
    # as Slurm's cgroup would, confine the task to 2 CPUs; no SLURM_JOB_ID, so no srun
    res = subprocess.run(
        ["taskset", "-c", ",".join(map(str, cpus)), "bash", str(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    got = sorted(json.loads(line) for line in res.stdout.splitlines())
    assert got == [["0", str(cpus[0]), "1", "2"], ["1", str(cpus[1]), "1", "2"]]
    assert "array task 2: 2 workers on 2 CPU(s), each pinned to its own cores" in res.stderr


def _scontrol_that(tmp_path, body):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "scontrol"
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(0o755)
    # COLUMNS wide: the warning is compared whole, unwrapped
    return child_env({"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "1000"})


@needs_console_script
@pytest.mark.parametrize(
    "body, why",
    [
        # a controller that never answers (scontrol retries for MessageTimeout, 10 s by default)
        (
            "exec sleep 60",
            "scontrol show config did not answer within 2 s: is slurmctld reachable?",
        ),
        # what Slurm 22.05's scontrol prints when slurmctld is down
        (
            "echo 'slurm_load_ctl_conf error: Unable to contact slurm controller (connect failure)' >&2;"
            " exit 1",
            "scontrol show config failed (exit status 1): slurm_load_ctl_conf error: Unable to contact "
            "slurm controller (connect failure)",
        ),
        (
            "echo 'Configuration data as of now'",
            "scontrol show config printed no MaxArraySize line",
        ),
    ],
)
def test_a_failing_scontrol_is_bounded_and_named(tmp_path, body, why):
    env = _scontrol_that(tmp_path, body)
    res = subprocess.run(
        [BLASTUNE, "slurm", "--tasks", "1002", "--json", "--", "true"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["max_array_size"] is None and data["max_array_size_source"] == why
    assert res.stderr == (
        "blastune: warning: --tasks 1002 is above Slurm's default MaxArraySize "
        "of 1001 and the cluster's limit is unknown here "
        f"({why}): sbatch rejects the array if MaxArraySize is lower; "
        "check with scontrol show config | grep MaxArraySize\n"
    )


def test_env_shell_slurm_and_the_script_share_one_rule(tmp_path):
    """`env --shell slurm` and `blastune slurm` take the thread count from the allocation alike:
    one function prints both, and both give the same count for each way Slurm describes a job."""
    from blastune.control.exports import render_exports
    from blastune.integrations.slurm import slurm_script, slurm_threads_lines

    block = render_exports({v: "2" for v in THREAD_VARS}, "slurm")
    script = slurm_script(2, ["true"], 2, array_limit=(None, "test")).text
    rule = "\n".join(slurm_threads_lines(2))
    assert rule in block and rule in script
    cases = [
        ({}, "2"),
        ({"SLURM_CPUS_PER_TASK": "3"}, "3"),
        ({"SLURM_JOB_CPUS_PER_NODE": "6(x2),4"}, "6"),
        ({"SLURM_CPUS_PER_TASK": "3", "SLURM_JOB_CPUS_PER_NODE": "12"}, "3"),
    ]
    for slurm_env, want in cases:
        env = child_env(threads=None)
        for var in ("SLURM_CPUS_PER_TASK", "SLURM_JOB_CPUS_PER_NODE"):
            env.pop(var, None)
        env.update(slurm_env)
        res = subprocess.run(
            ["bash", "-c", block + '\necho "$OMP_NUM_THREADS $MKL_NUM_THREADS"'],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert res.stdout.split() == [want, want], (slurm_env, res.stderr)


@needs_console_script
def test_a_workers_task_without_blastune_on_path_stops_at_once(tmp_path):
    script = _script(
        tmp_path, "--tasks", "1", "-c", "2", "--workers", "2", command=["touch", "ran"]
    )
    env = child_env(threads=None)
    env.update(PATH="/usr/bin:/bin", SLURM_ARRAY_TASK_ID="0", SLURM_CPUS_PER_TASK="2")
    if shutil.which("blastune", path=env["PATH"]):
        pytest.skip("a blastune is installed in /usr/bin or /bin here")
    res = subprocess.run(
        ["/bin/bash", str(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert res.returncode == 2 and res.stdout == "" and not (tmp_path / "ran").exists()
    assert res.stderr == (
        "blastune: blastune is not on PATH in this job; activate the environment "
        "that has it before sbatch (the job inherits PATH) or add its bin "
        "directory to PATH here\n"
    )
    assert f"this script was written by {BLASTUNE})" in script.read_text()
