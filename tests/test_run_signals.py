"""`blastune run` as a real parent under real senders: `timeout`, `os.killpg`, `kill`, SIGKILL (issue 11.14).

The child counts the signals it receives (blocked, then taken one by one with sigtimedwait, so two
deliveries are two unless the kernel merged them while pending) and prints the list when no more
came for a second. Each case runs with ``--report`` (blastune stays the parent and forwards) and
without (blastune execs the command, like env/nice).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import child_env

BLASTUNE = shutil.which("blastune")
TIMEOUT = shutil.which("timeout")
pytestmark = pytest.mark.skipif(
    BLASTUNE is None or not hasattr(signal, "sigtimedwait"),
    reason="needs the blastune console script and Linux signals",
)

COUNTER = r"""
import json, os, signal, sys, time
sigs = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as f:
    f.write(str(os.getpid()))
os.rename(tmp, sys.argv[1])
got, deadline = [], time.time() + 60
while time.time() < deadline:
    info = signal.sigtimedwait(sigs, 0.05)
    if info is not None:
        got.append(signal.Signals(info.si_signo).name)
        deadline = time.time() + 1.0
print(json.dumps(got), flush=True)
"""

MODES = [pytest.param(["--report"], id="parent"), pytest.param([], id="exec")]


def _wait_ready(ready, proc, timeout=60.0) -> int:
    deadline = time.time() + timeout
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "the child never got ready"
        time.sleep(0.02)
    return int(ready.read_text())


def _start(argv, tmp_path, **kw):
    script = tmp_path / "counter.py"
    script.write_text(COUNTER)
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        argv + [sys.executable, str(script), str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        **kw,
    )
    return proc, _wait_ready(ready, proc)


def _counted(proc):
    out, err = proc.communicate(timeout=60)
    return json.loads(out.strip().splitlines()[-1]), proc.returncode, err


@pytest.mark.skipif(TIMEOUT is None, reason="coreutils timeout not installed")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_timeout_reaches_the_child_once(sig, tmp_path):
    # GNU timeout signals its command (blastune) and then its whole process group (kill(0, sig)):
    # the child got one copy from the group and one forwarded. A signal sent to timeout itself takes
    # the same path as the time running out, without waiting for it. (Without --report blastune
    # *is* the command, which then gets what `timeout CMD` gives a command: one or, when the two
    # kills do not merge, two copies -- timeout's doing, not ours; see test_exec_mode_is_the_command_itself.)
    proc, _ = _start([TIMEOUT, "120", BLASTUNE, "run", "-t", "1", "--report", "--"], tmp_path)
    proc.send_signal(sig)
    got, status, err = _counted(proc)
    assert got == [sig.name], err
    assert status == 0, err  # the child counted and exited 0; timeout passes that through


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_killpg_reaches_the_child_once(mode, sig, tmp_path):
    proc, _ = _start([BLASTUNE, "run", "-t", "1", *mode, "--"], tmp_path, start_new_session=True)
    os.killpg(proc.pid, sig)  # blastune leads its own group here, as a job script's job would
    got, status, err = _counted(proc)
    assert got == [sig.name], err
    assert status == 0, err


@pytest.mark.parametrize("mode", MODES)
def test_a_signal_to_blastune_alone_is_passed_on_once(mode, tmp_path):
    proc, _ = _start([BLASTUNE, "run", "-t", "1", *mode, "--"], tmp_path)
    proc.send_signal(signal.SIGTERM)  # from a process outside blastune's group, to blastune only
    got, status, err = _counted(proc)
    assert got == ["SIGTERM"], err


def test_repeated_signals_seconds_apart_each_reach_the_child(tmp_path):
    proc, _ = _start(
        [BLASTUNE, "run", "-t", "1", "--report", "--"], tmp_path, start_new_session=True
    )
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.5)  # well past a burst: a second event
    os.killpg(proc.pid, signal.SIGINT)
    got, _, err = _counted(proc)
    assert got == ["SIGINT", "SIGINT"], err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_sigint_sigterm_sighup_end_the_child_and_give_128_plus_n(sig, tmp_path):
    ready = tmp_path / "ready"
    code = f"import pathlib, time; pathlib.Path({str(ready)!r}).write_text('1'); time.sleep(60)"
    proc = subprocess.Popen(
        [BLASTUNE, "run", "-t", "1", "--report", "--", sys.executable, "-c", code],
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    _wait_ready(ready, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert "wall" in err  # the report still comes, after the child's end


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("State:\tZ") for line in f)  # a zombie no one reaped yet
    except FileNotFoundError:
        return True


def test_the_child_dies_with_a_sigkilled_blastune(tmp_path):
    # SIGKILL cannot be passed on: PR_SET_PDEATHSIG makes the kernel end the child with blastune
    proc, child = _start(
        [BLASTUNE, "run", "-t", "1", "--report", "--"], tmp_path, start_new_session=True
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    deadline = time.time() + 10
    while not _gone(child) and time.time() < deadline:
        time.sleep(0.05)
    alive = not _gone(child)
    if alive:
        os.kill(child, signal.SIGKILL)
    assert not alive, "the child outlived its SIGKILLed parent"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "cmd,status,needle",
    [
        (["no-such-command-xyz"], 127, "command not found: no-such-command-xyz"),
        (["./no/such/file"], 127, "no such file"),
        (["/etc/passwd"], 126, "permission denied"),
        (["/"], 126, "is a directory"),
        ([""], 2, "the command name is empty"),
    ],
)
def test_a_command_that_cannot_start_gives_127_or_126_like_env(mode, cmd, status, needle):
    r = subprocess.run(
        [BLASTUNE, "run", "-t", "1", *mode, "--", *cmd], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == status
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("blastune: error:") and needle in lines[0], (
        r.stderr
    )
    ref = subprocess.run(["env", *cmd], capture_output=True, timeout=60)
    assert ref.returncode == status or cmd == [""]  # the convention we follow (env '' gives 127)


def test_exec_mode_is_the_command_itself(tmp_path):
    # without --report/--json blastune becomes the command: same pid, killed by the signal itself
    code = "import os, signal; print(os.getpid(), flush=True); os.kill(os.getpid(), signal.SIGKILL)"
    proc = subprocess.Popen(
        [BLASTUNE, "run", "-t", "1", "--", sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    out, _ = proc.communicate(timeout=60)
    assert int(out) == proc.pid
    assert proc.returncode == -signal.SIGKILL


# --- run --copies: how many, and a stop while they start (issue 20.3) -----------------------------


def _usable_cpus() -> int:
    from blastune.facts.cpu import usable_cores

    return usable_cores()[0]


def _descendants(root: int) -> list[int]:
    """Live processes below ``root`` (copies run in groups of their own, so not found by group)."""
    parents = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rpartition(")")[2].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents.setdefault(int(fields[1]), []).append(int(d))
    found, todo = [], [root]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _marks(path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_run_copies_above_four_per_cpu_needs_oversubscribe_and_starts_nothing(tmp_path):
    # `run --copies 100000 -- true` used to start copies until the process table ran out
    marks = tmp_path / "started"
    mark = ["sh", "-c", f"echo $$ >> {marks}"]
    limit = 4 * _usable_cpus()
    r = subprocess.run(
        [BLASTUNE, "run", "--copies", str(limit + 1), "--", *mark],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert f"at most {limit}" in lines[0] and "--oversubscribe" in lines[0]
    assert _marks(marks) == 0  # refused before a single copy started
    r = subprocess.run(
        [BLASTUNE, "run", "--copies", str(limit + 1), "--oversubscribe", "--", *mark],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert _marks(marks) == limit + 1  # asked for explicitly: exactly that many, no more


@pytest.mark.parametrize("args", [["2147483647"], ["4097", "--oversubscribe"], ["100000"]])
def test_run_copies_above_the_hard_cap_is_one_line_and_builds_nothing(args, tmp_path):
    # --copies 2147483647 used to build a 16.8 GB list before starting anything
    marks = tmp_path / "started"
    proc = subprocess.Popen(
        [BLASTUNE, "run", "--copies", *args, "--", "sh", "-c", f"echo $$ >> {marks}"],
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 2, err
    assert err.strip().splitlines() == [
        f"blastune: error: invalid --copies {args[0]}: must be a whole number from 1 to 4096"
    ]
    assert usage.ru_maxrss < 500 * 1024  # KiB: an interpreter's worth, not a list of the count
    assert _marks(marks) == 0


@pytest.mark.parametrize("via", ["timeout", "kill"])
def test_a_stop_signal_while_copies_start_stops_the_starting(via, tmp_path):
    """4096 copies take seconds to start; SIGTERM (from `timeout`) or SIGINT (Ctrl-C's) used to
    wait blocked until every one had started. Now the starting stops, the started copies end, and
    the exit status is the signal's (timeout passes its command's on)."""
    if via == "timeout" and TIMEOUT is None:
        pytest.skip("coreutils timeout not installed")
    marks = tmp_path / "started"
    argv = [
        BLASTUNE,
        "run",
        "--copies",
        "4096",
        "--oversubscribe",
        "--json",
        "--",
        "sh",
        "-c",
        f"echo $$ >> {marks}; exec sleep 120",
    ]
    sig = signal.SIGTERM if via == "timeout" else signal.SIGINT
    proc = subprocess.Popen(
        [TIMEOUT, "300", *argv] if via == "timeout" else argv,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _marks(marks) < 1:  # a copy runs: blastune is starting the others
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.01)
        proc.send_signal(sig)  # to timeout (which passes it on to blastune), or to blastune
        _, err = proc.communicate(timeout=120)
    finally:
        left = _descendants(proc.pid) if proc.poll() is None else []
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    (summary,) = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert summary["exit_status"] == 128 + sig
    assert 1 <= len(summary["copies"]) < 4096  # the starting stopped
    assert _marks(marks) <= len(summary["copies"])
    end = time.monotonic() + 10
    while any(_alive(c["pid"]) for c in summary["copies"]) and time.monotonic() < end:
        time.sleep(0.05)
    left = [c["pid"] for c in summary["copies"] if _alive(c["pid"])]
    assert not left, f"started copies {left} outlived blastune"


def _alive(pid: int) -> bool:
    return not _gone(pid)
