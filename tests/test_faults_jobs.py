"""Faults injected into the installed ``blastune jobs``: signals, crashing tasks, command substitution.

Each run is started in a session of its own (``start_new_session=True``): afterwards every process
of that session -- blastune, the layout processes, their workers, multiprocessing's resource tracker
-- must be gone, found by scanning /proc for the session id (processes reparented to init keep it).
Workloads are tiny and BLAS threads are 1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import child_env

TESTS = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc; Linux signals"
)


def _env(tmp_path, **extra):
    env = child_env(extra, threads=1)
    env["PYTHONPATH"] = str(TESTS) + os.pathsep + env["PYTHONPATH"]
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["COLUMNS"] = "1000"  # messages are compared whole: no wrapping to a terminal's width
    return env


def session_members(sid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose session id is ``sid`` (zombies excluded)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = (
                Path(f"/proc/{entry}/cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
            )
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()  # after "(comm)": state ppid pgrp session ...
        if fields[0] != "Z" and int(fields[3]) == sid:
            out.append((int(entry), cmd.strip()))
    return out


def wait_gone(sid: int, timeout: float = 15.0) -> list[tuple[int, str]]:
    deadline = time.monotonic() + timeout
    left = session_members(sid)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = session_members(sid)
    return left


def _kill_session(sid: int) -> None:
    for pid, _ in session_members(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _start(args, tmp_path, **extra):
    return subprocess.Popen(
        ["blastune", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path, **extra),
        cwd=tmp_path,
        start_new_session=True,
    )


def _wait_for(path: Path, proc, timeout: float = 90.0, written: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and (path.read_text().strip() or not written):
            return
        if proc.poll() is not None:
            pytest.fail(f"blastune ended early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.1)
    pytest.fail("the workers never started their timed batch")


SIGNALS = [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM"), (signal.SIGHUP, "SIGHUP")]


@pytest.mark.parametrize("to_group", [False, True], ids=["process", "group"])
@pytest.mark.parametrize("sig, name", SIGNALS, ids=[n for _, n in SIGNALS])
def test_signal_mid_batch_ends_every_process_keeps_finished_batches(sig, name, to_group, tmp_path):
    """The serial baseline has finished a batch; the workers of process:2x1 are mid-batch (sleeping).
    A signal -- to blastune alone, or to its whole group as a terminal or `timeout` sends it -- ends
    blastune with 128 + signal, one line on stderr, the finished layout saved with status
    'interrupted', and no process of the run left: no worker, no layout process, no resource tracker
    (0.1.0 left 4 workers and the tracker > 60 s after a SIGTERM to blastune alone)."""
    mark, out = tmp_path / "mark", tmp_path / "jobs.json"
    proc = _start(
        [
            "jobs",
            "--func",
            "jobfuncs:sleepy_in_workers",
            "--tasks",
            "4",
            "-r",
            "1",
            "--layouts",
            "process:2x1",
            "--out",
            str(out),
            "--no-save-profile",
        ],
        tmp_path,
        JOBFUNCS_MARK=str(mark),
    )
    try:
        _wait_for(mark, proc)
        members = session_members(proc.pid)
        assert len(members) >= 4, (
            members
        )  # blastune, 2 layout processes, >= 2 workers (+ the tracker)
        (os.killpg if to_group else os.kill)(proc.pid, sig)
        stdout, stderr = proc.communicate(
            timeout=30
        )  # returns only once every holder of stdout closed it
        left = wait_gone(proc.pid)
    finally:
        _kill_session(proc.pid)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, stderr
    assert stderr.splitlines() == [
        f"blastune: interrupted by {name}: worker processes ended; 1 layout(s) "
        f"measured, saved to {out} (status interrupted)"
    ], stderr
    assert "leaked" not in stderr and stdout == ""
    assert not left, f"left behind: {left}"
    doc = json.loads(out.read_text())
    assert doc["status"] == "interrupted" and [r["layout"]["spec"] for r in doc["results"]] == [
        "serial:1x1"
    ]
    assert len(doc["results"][0]["walls"]) == 1


def test_sigterm_with_nothing_finished_says_nothing_was_saved(tmp_path):
    """Stopped while the baseline is still being started: nothing to keep, and it says so."""
    proc = _start(
        [
            "jobs",
            "--workload",
            "python",
            "--size",
            "20000",
            "--tasks",
            "100000",
            "-r",
            "1",
            "--layouts",
            "process:2x1",
            "--no-save-profile",
        ],
        tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(session_members(proc.pid)) < 2:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        left = wait_gone(proc.pid)
    finally:
        _kill_session(proc.pid)
    assert proc.returncode == 143, stderr
    assert stderr.splitlines() == [
        "blastune: interrupted by SIGTERM: worker processes ended; nothing saved (no --out)"
    ], stderr
    assert not left, left


@pytest.mark.parametrize("sig, name", SIGNALS[:2], ids=[n for _, n in SIGNALS[:2]])
def test_a_signal_while_a_layout_process_is_reaped_stops_the_run(sig, name, tmp_path):
    """Every batch is done; blastune waits for the thread layout's process to end (the task's module
    lingers at exit). A signal then used to be swallowed by the reaper: the run went on, saved
    'complete' and exited 0. Now the process is killed and collected, and the stop is the run's."""
    mark, out = tmp_path / "mark", tmp_path / "jobs.json"
    args = ["jobs", "--func", "jobfuncs:slow_to_end", "--tasks", "4", "-r", "1"]
    args += ["--layouts", "thread:2x1", "--out", str(out), "--no-save-profile"]
    proc = _start(args, tmp_path, JOBFUNCS_MARK=str(mark))
    try:
        _wait_for(mark, proc, written=False)
        os.kill(proc.pid, sig)
        stdout, stderr = proc.communicate(timeout=30)
        left = wait_gone(proc.pid)
    finally:
        _kill_session(proc.pid)
    assert proc.returncode == 128 + sig, (proc.returncode, stderr)
    assert stderr.splitlines() == [
        f"blastune: interrupted by {name}: worker processes ended; 2 layout(s) "
        f"measured, saved to {out} (status interrupted)"
    ], stderr
    assert stdout == "" and not left, left
    assert json.loads(out.read_text())["status"] == "interrupted"


def test_a_stop_dropped_on_its_way_still_ends_the_run(jobs_sandbox, monkeypatch):
    """A stop that something between the handler and the run swallows (here: a close of a layout
    process that catches everything) is raised again before the run is called complete."""
    from blastune.measure.jobs.entry import JobsInterrupted, Layout, run_jobs
    from blastune.measure.jobs.layout_handle import LayoutHost

    close = LayoutHost.close

    def swallowing_close(self):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the handler runs here; a second one this soon is absorbed
        except KeyboardInterrupt:
            pass
        close(self)

    monkeypatch.setattr(LayoutHost, "close", swallowing_close)
    with pytest.raises(JobsInterrupted) as stopped:
        run_jobs(func="jobfuncs:square", tasks=10, repeats=1, layouts=[Layout("thread", 2, 1)])
    assert stopped.value.signum == signal.SIGTERM
    assert stopped.value.result.status == "interrupted" and len(stopped.value.result.results) == 2


def test_a_stop_while_hosts_are_aborted_collects_every_host_then_is_raised():
    """Two layout processes that ignore SIGTERM, and a real SIGINT while the first is reaped: the
    first is killed at once, the second still reaped (SIGKILL after its grace), then the stop is
    raised -- it used to be swallowed."""
    import threading
    from multiprocessing.connection import Pipe

    from blastune.measure.jobs.layout_handle import LayoutHost

    hosts = []
    for _ in range(2):
        host = LayoutHost.__new__(LayoutHost)  # the reaping half only: no layout to run
        host.proc = subprocess.Popen(
            ["sh", "-c", "trap '' TERM; echo up; exec sleep 60"], stdout=subprocess.PIPE
        )
        host.cmd, host.reply = Pipe()
        assert host.proc.stdout.readline() == b"up\n"
        hosts.append(host)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            LayoutHost.abort_all(hosts)
    finally:
        timer.cancel()
        for host in hosts:
            if host.proc.poll() is None:
                host.proc.kill()
                host.proc.wait()
    assert [h.proc.returncode for h in hosts] == [-signal.SIGKILL, -signal.SIGKILL]
    assert all(h.cmd.closed and h.reply.closed for h in hosts)


def test_command_substitution_returns_when_blastune_is_terminated(tmp_path):
    """`x=$(timeout 4 blastune jobs …)`: 0.1.0 hung -- its orphaned workers kept the pipe open. Here
    timeout's SIGTERM ends blastune, every worker goes with it, and the shell carries on at once: an
    orphaned worker would keep the pipe open through its 120 s nap, past the 60 s this test waits."""
    script = (
        "x=$(timeout -s TERM 4 blastune jobs --func jobfuncs:sleepy_in_workers --tasks 4 -r 1 "
        '--layouts process:2x1 --no-save-profile); echo "status=$?"'
    )
    sh = subprocess.Popen(
        ["sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        try:
            stdout, stderr = sh.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the shell still waits for the pipe: blastune's workers outlived it")
        left = wait_gone(sh.pid)
    finally:
        _kill_session(sh.pid)
    assert stdout.strip() == "status=124", (stdout, stderr)
    assert "leaked" not in stderr and "Traceback" not in stderr, stderr
    assert not left, left


def _run_func(func: str, layouts: str, tmp_path):
    """`jobs --func FUNC` on 4 tasks, once, to its end -> (exit status, stdout, stderr, the processes
    of its session still alive afterwards)."""
    proc = _start(
        [
            "jobs",
            "--func",
            func,
            "--tasks",
            "4",
            "-r",
            "1",
            "--layouts",
            layouts,
            "--no-save-profile",
        ],
        tmp_path,
    )
    try:
        stdout, stderr = proc.communicate(timeout=120)
        left = wait_gone(proc.pid)
    finally:
        _kill_session(proc.pid)
    return proc.returncode, stdout, stderr, left


CRASHES = [
    (
        "jobfuncs:crash_exit",
        "serial",
        "layout serial:1x1: the process running it died while starting (exit status 9)",
    ),
    (
        "jobfuncs:crash_segv",
        "serial",
        "layout serial:1x1: the process running it died while starting "
        "(killed by SIGSEGV (a crash in C code))",
    ),
    (
        "jobfuncs:crash_exit",
        "thread:2x1",
        "the process running it died while starting (exit status 9)",
    ),
    (
        "jobfuncs:crash_exit_in_workers",
        "process:2x1",
        "a worker process of layout process:2x1 died",
    ),
    ("jobfuncs:crash_segv_in_workers", "process:2x1", "killed by SIGSEGV"),
]


@pytest.mark.parametrize(
    "func, layouts, msg", CRASHES, ids=[f"{f.split(':')[1]}-{lay}" for f, lay, _ in CRASHES]
)
def test_a_crashing_task_is_one_line_exit_2_and_leaves_nothing(func, layouts, msg, tmp_path):
    """os._exit(9) or a segfault in the user's function used to end blastune itself (exit 9/139, no
    message, orphaned workers): every layout, the serial baseline included, now runs in a child."""
    returncode, stdout, stderr, left = _run_func(func, layouts, tmp_path)
    assert returncode == 2, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("blastune: error: ") and msg in lines[0], stderr
    assert "leaked" not in stderr and stdout == ""
    assert not left, left


def test_api_call_without_main_guard_works_and_the_bootstrap_reimport_is_one_clear_error(tmp_path):
    """docs/jobs.md's example has its `if __name__ == "__main__":` guard. A script without one still
    works (the layouts' processes are started with subprocess, never by re-importing the script), and
    where a spawned process of the user's own re-imports the script and reaches blastune.jobs(),
    the error says what to do instead of multiprocessing's "bootstrapping phase" RuntimeError."""
    doc = (TESTS.parent / "docs" / "jobs.md").read_text()
    blocks = [b for b in doc.split("```python")[1:] if "blastune.jobs(" in b.split("```")[0]]
    assert blocks and all('if __name__ == "__main__":' in b.split("```")[0] for b in blocks)

    plain = tmp_path / "plain.py"
    plain.write_text(
        "import blastune\n"
        "res = blastune.jobs(func='jobfuncs:square', tasks=4, repeats=1,\n"
        "                    layouts=blastune.measure.jobs.layouts.parse_layouts('process:2x1'))\n"
        "print(res.best.layout.spec)\n"
    )
    p = subprocess.run(
        [sys.executable, str(plain)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() in ("serial:1x1", "process:2x1")

    reimport = tmp_path / "reimport.py"
    reimport.write_text(
        "import multiprocessing, sys\n"
        "import blastune\n"
        "if __name__ == '__mp_main__':  # the spawned child, re-importing this script\n"
        "    try:\n"
        "        blastune.jobs(func='jobfuncs:square', tasks=4, repeats=1)\n"
        "    except blastune.BlastuneError as exc:\n"
        "        print('child:', exc, file=sys.stderr)\n"
        "        sys.exit(3)\n"
        "p = multiprocessing.get_context('spawn').Process(target=print)\n"
        "p.start(); p.join(); sys.exit(p.exitcode)\n"
    )
    p = subprocess.run(
        [sys.executable, str(reimport)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    assert p.returncode == 3, p.stderr
    assert 'put the call under `if __name__ == "__main__":`' in p.stderr
    assert "bootstrapping phase" not in p.stderr


RAISES_KEYBOARD_INTERRUPT = [
    ("jobfuncs:interrupts", "serial", "blastune: error: task 0 raised KeyboardInterrupt"),
    ("jobfuncs:interrupts", "thread:2x1", "blastune: error: task 0 raised KeyboardInterrupt"),
    (
        "jobfuncs:interrupts_in_workers",
        "process:2x1",
        "blastune: error: layout process:2x1: task 0 (the warm-up in a worker process) raised "
        "KeyboardInterrupt",
    ),
]


@pytest.mark.parametrize(
    "func, layouts, line",
    RAISES_KEYBOARD_INTERRUPT,
    ids=[f"{f.split(':')[1]}-{lay}" for f, lay, _ in RAISES_KEYBOARD_INTERRUPT],
)
def test_a_task_raising_keyboard_interrupt_is_its_failure_in_one_line(
    func, layouts, line, tmp_path
):
    """It used to print a 22-line traceback and 'died while starting (killed by SIGINT)': no signal
    was sent, so it is the task's failure (exit 2), not a user's stop (130)."""
    returncode, stdout, stderr, left = _run_func(func, layouts, tmp_path)
    assert returncode == 2, stderr
    assert stderr.splitlines() == [line] and stdout == ""
    assert not left, left
