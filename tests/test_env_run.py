"""`blastune env` evaluated by real shells, and `blastune run` as a real parent process."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from blastune.cli import app
from blastune.facts.environment import THREAD_VARS
from tests.conftest import child_env

BLASTUNE = shutil.which("blastune")
needs_script = pytest.mark.skipif(
    BLASTUNE is None, reason="blastune console script not installed (pip install .)"
)
PRINT_VARS = " ".join(f"${v}" for v in THREAD_VARS)


def shell_or_skip(name):
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    return path


@needs_script
@pytest.mark.parametrize(
    "shell,script",
    [
        ("bash", 'eval "$(blastune env -t 3)"; echo ' + PRINT_VARS),
        ("zsh", 'eval "$(blastune env -t 3 --shell zsh)"; echo ' + PRINT_VARS),
        ("sh", 'eval "$(blastune env -t 3 --shell sh)"; echo ' + PRINT_VARS),
        ("fish", "blastune env -t 3 --shell fish | source; echo " + PRINT_VARS),
        ("tcsh", "eval `blastune env -t 3 --shell tcsh`; echo " + PRINT_VARS),
        ("csh", "eval `blastune env -t 3 --shell csh`; echo " + PRINT_VARS),
    ],
)
def test_real_shells_evaluate_the_exports(shell, script):
    exe = shell_or_skip(shell)
    r = subprocess.run(
        [exe, "-c", script], capture_output=True, text=True, timeout=60, env=child_env()
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["3"] * len(THREAD_VARS)


@needs_script
def test_exports_reach_a_child_python_through_bash():
    script = 'eval "$(blastune env --jobs 2)"; python -c "import os,json; print(json.dumps(dict(os.environ)))"'
    r = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, env=child_env()
    )
    env = json.loads(r.stdout)
    expected = str(max(1, __import__("blastune").cpu_info().usable_cores // 2))
    assert all(env[v] == expected for v in THREAD_VARS)


@needs_script
def test_dotenv_and_docker_forms_parse(tmp_path):
    dotenv = subprocess.run(
        [BLASTUNE, "env", "-t", "4", "--shell", "dotenv"], capture_output=True, text=True
    ).stdout
    f = tmp_path / ".env"
    f.write_text(dotenv)
    r = subprocess.run(
        ["bash", "-c", f"set -a; . {f}; echo $MKL_NUM_THREADS $OMP_NUM_THREADS"],
        capture_output=True,
        text=True,
    )
    assert r.stdout.split() == ["4", "4"]
    docker = subprocess.run(
        [BLASTUNE, "env", "-t", "4", "--shell", "docker"], capture_output=True, text=True
    ).stdout
    words = shlex.split(docker)
    assert words[::2] == ["-e"] * len(THREAD_VARS)
    assert words[1::2] == [f"{v}=4" for v in THREAD_VARS]


def test_powershell_and_cmd_forms():
    runner = CliRunner()
    ps = runner.invoke(app, ["env", "-t", "2", "--shell", "powershell"])
    assert ps.exit_code == 0
    assert ps.stdout.splitlines() == [f"$env:{v} = '2'" for v in THREAD_VARS]
    cmd = runner.invoke(app, ["env", "-t", "2", "--shell", "cmd"])
    assert cmd.stdout.splitlines() == [f"set {v}=2" for v in THREAD_VARS]


@needs_script
def test_slurm_form_follows_the_allocation():
    out = subprocess.run(
        [BLASTUNE, "env", "-t", "2", "--shell", "slurm"], capture_output=True, text=True
    ).stdout
    assert out.splitlines()[0] == "#SBATCH --cpus-per-task=2"
    script = out + "\necho $OMP_NUM_THREADS $OPENBLAS_NUM_THREADS\n"
    inside = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        env={**child_env(), "SLURM_CPUS_PER_TASK": "6"},
    )
    assert inside.stdout.split() == ["6", "6"]
    outside = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=child_env()
    )
    assert outside.stdout.split() == ["2", "2"]


def test_json_form():
    r = CliRunner().invoke(app, ["env", "-t", "5", "--json"])
    data = json.loads(r.stdout)
    assert data["schema"] == "blastune.env/1" and data["threads"] == 5
    assert data["env"] == {v: "5" for v in THREAD_VARS}


BAD = [
    # one count validator, one message, on every command (was click's "Input should be ...")
    (["env", "-t", "0"], "invalid --threads 0: must be a whole number from 1 to 2147483647"),
    (["env", "-t", "-3"], "invalid --threads '-3': must be a whole number from 1 to 2147483647"),
    (["env", "-t", "abc"], "invalid --threads 'abc': must be a whole number from 1 to 2147483647"),
    (["env", "--jobs", "0"], "invalid --jobs 0: must be a whole number from 1 to 2147483647"),
    (["env", "-t", "99999999999999999999"], "must be a whole number from 1 to 2147483647"),
    (["env", "-t", "1", "--shell", "klingon"], "unknown shell 'klingon'"),
    (["env", "-t", "1", "--shell", ""], "unknown shell '': choose one of bash,"),  # was: bash
    (["recommend", "--shell", ""], "unknown shell '': choose one of bash,"),  # before measuring
    (["recommend", "-j", "0"], "invalid --jobs 0: must be a whole number from 1 to 2147483647"),
    (["env", "-t", "1", "--jobs", "2"], "only one of"),
    (["run", "-t", "0", "--", "true"], "invalid --threads 0: must be a whole number from 1 to"),
    (["run", "-t", "1"], "no command given"),
    (
        ["run", "-t", "1", "--", ""],
        "the command name is empty",
    ),  # was "cannot run : permission denied"
    (["run", "-t", "1", "--report", "--", ""], "the command name is empty"),
    (
        ["env", "-t", "1", "--json", "--shell", "fish"],
        "--json or --shell fish",
    ),  # --shell was ignored
]
# a command that cannot start gives 127/126 like env(1): tests/test_run_signals.py


@pytest.mark.parametrize("args,needle", BAD)
def test_bad_input_is_one_line_exit_2_cli_runner(args, needle):
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("blastune: error:") and needle in lines[0]


@needs_script
@pytest.mark.parametrize("args,needle", BAD)
def test_bad_input_is_one_line_exit_2_console_script(args, needle):
    r = subprocess.run([BLASTUNE, *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr


@needs_script
def test_run_sets_the_variables_and_passes_the_exit_status_through():
    code = "import os, sys; print(os.environ['OPENBLAS_NUM_THREADS'], os.environ['MKL_NUM_THREADS']); sys.exit(7)"
    r = subprocess.run(
        [BLASTUNE, "run", "-t", "1", "--", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 7
    assert r.stdout.split() == ["1", "1"]


@needs_script
def test_run_child_really_runs_one_blas_thread():
    code = "import numpy, threadpoolctl; print(threadpoolctl.threadpool_info()[0]['num_threads'])"
    r = subprocess.run(
        [BLASTUNE, "run", "-t", "1", "--", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(threads=None),
    )
    assert r.stdout.strip() == "1"


@needs_script
@pytest.mark.parametrize("mode", [[], ["--report"]], ids=["exec", "parent"])
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 42), (signal.SIGTERM, 43)])
def test_run_forwards_signals_to_the_child(sig, code, mode, tmp_path):
    ready = tmp_path / "ready"
    child = (
        "import signal, sys, time, pathlib\n"
        f"signal.signal({int(sig)}, lambda *a: sys.exit({code}))\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(60)\n"
    )
    p = subprocess.Popen([BLASTUNE, "run", "-t", "1", *mode, "--", sys.executable, "-c", child])
    deadline = time.time() + 30
    while not ready.exists() and time.time() < deadline:
        time.sleep(0.05)
    p.send_signal(sig)
    assert p.wait(timeout=30) == code


@needs_script
def test_run_reports_a_signal_death_as_128_plus_n():
    # as the parent (--report/--json); without them blastune is the command and dies of the signal
    r = subprocess.run(
        [
            BLASTUNE,
            "run",
            "-t",
            "1",
            "--json",
            "--",
            sys.executable,
            "-c",
            "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
        ],
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 128 + 9
    assert json.loads(r.stderr)["exit_status"] == 128 + 9


@needs_script
@pytest.mark.parametrize("mode", [[], ["--report"]], ids=["exec", "parent"])
def test_ctrl_c_at_a_terminal_reaches_the_child_once(mode, tmp_path):
    # The terminal sends Ctrl-C's SIGINT to its whole foreground group, the child included: a second,
    # forwarded copy used to interrupt the child's own clean-up.
    import os
    import pty

    script = tmp_path / "child.py"
    script.write_text(
        "import time\n"
        "try:\n"
        "    print('ready', flush=True); time.sleep(60)\n"
        "except KeyboardInterrupt:\n"
        "    try:\n"
        "        time.sleep(1); print('cleaned up', flush=True)\n"
        "    except KeyboardInterrupt:\n"
        "        print('cleanup interrupted', flush=True)\n"
    )
    pid, fd = pty.fork()  # the child leads a new session with the pty as its controlling terminal
    if pid == 0:
        os.execve(
            BLASTUNE,
            [BLASTUNE, "run", "-t", "1", *mode, "--", sys.executable, str(script)],
            child_env(),
        )
    out = b""
    deadline = time.time() + 60
    while b"ready" not in out and time.time() < deadline:
        out += os.read(fd, 1024)
    os.write(fd, b"\x03")  # what pressing Ctrl-C types
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # EIO: every process holding the terminal has exited
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = out.decode(errors="replace")
    assert "cleaned up" in text and "cleanup interrupted" not in text, text
    assert os.waitstatus_to_exitcode(status) == 0


@needs_script
def test_run_report_measures_the_whole_tree(tmp_path):
    # Issue 12.5: `run --report` is time(1) for oversubscription. Here a shell starts two numpy loops
    # of 2 BLAS threads each on the machine's cores: the grandchildren must be found and named, the
    # CPU time comes from rusage, and with more busy threads than cores their threads *must* have
    # waited for a CPU (physically so; other load only adds to it).
    cores = __import__("blastune").cpu_info().usable_cores
    loop = tmp_path / "loop.py"
    loop.write_text(
        "import time, numpy as np\n"
        "a = np.random.default_rng(0).standard_normal((300, 300))\n"
        "t = time.perf_counter()\n"
        "while time.perf_counter() - t < 2.0:\n"
        "    a @ a\n"
    )
    n = 2 * cores  # twice the cores in BLAS threads, over two processes
    r = subprocess.run(
        [
            BLASTUNE,
            "run",
            "-t",
            str(cores),
            "--report",
            "--json",
            "--",
            "sh",
            "-c",
            f"{sys.executable} {loop} & {sys.executable} {loop} & wait; exit 5",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=child_env(threads=None),
    )
    assert r.returncode == 5, r.stderr
    rep = json.loads(r.stderr.strip().splitlines()[-1])["report"]
    loops = [p for p in rep["processes"] if p["pid"] != rep["processes"][0]["pid"]]
    assert len(loops) == 2 and rep["processes"][0]["command"].startswith("sh -c"), rep["processes"]
    assert all(p["blas"] == ["openblas"] and p["max_threads"] >= cores for p in loops), loops
    assert rep["blas_threads_max"] >= cores
    assert rep["cpu_s"] > 0.5 and abs(rep["cpu_s"] - rep["user_s"] - rep["sys_s"]) < 1e-6
    assert rep["source"] == "schedstat" and 50 <= rep["coverage_pct"] <= 100
    if n > cores:
        assert rep["wait_share_pct"] > 10, rep
    text = subprocess.run(
        [BLASTUNE, "run", "-t", "1", "--report", "--", sys.executable, "-c", "pass"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stderr
    assert "wall" in text and "waited for a CPU" in text and "BLAS processes" in text
    assert all(len(line) <= 100 for line in text.splitlines())
