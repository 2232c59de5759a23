"""Fault injection for `blastune sweep`, through the installed console script (issue 11).

Signals (SIGINT, SIGTERM, SIGHUP; to the process and to its process group), a double Ctrl-C, a
SIGKILLed parent with an --isolate worker, a full disk (a tiny tmpfs), a read-only directory, and two
sweeps on one --out. After each: no lost or truncated file, the status the docs promise, finished
points kept, no process left behind, the documented exit status. Tiny sizes: each test takes seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import child_env

BLASTUNE = shutil.which("blastune")
pytestmark = pytest.mark.skipif(
    BLASTUNE is None, reason="blastune console script not installed (pip install -e .)"
)

# many tiny points: long enough to be interrupted after the first few are saved
LONG = [
    "--op",
    "add",
    "--size",
    ",".join(str(8 * i) for i in range(1, 61)),
    "--threads",
    "1,2",
    "--min-repeats",
    "3",
    "--budget",
    "120",
]
TINY = ["--op", "add", "--size", "8", "--threads", "1", "--min-repeats", "3", "--budget", "1"]


def start(*args, **kw) -> subprocess.Popen:
    # a session of its own: the group can be signalled as a terminal or Slurm would
    return subprocess.Popen(
        [BLASTUNE, "sweep", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        start_new_session=True,
        **kw,
    )


def read_doc(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def wait_for_points(path: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        doc = read_doc(path)
        if doc and len(doc["points"]) >= n:
            return doc
        if proc.poll() is not None:
            pytest.fail(f"sweep ended early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail(f"no {n} point(s) in {path} within {timeout} s")


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes of session ``sid``."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            out.append(int(d.name))
    return out


def children_of(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def gone_within(pids, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not any(Path(f"/proc/{p}").exists() and "Z" not in _state(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return "Z"


def check_interrupted(
    proc, out: Path, expected_rc: int, stdout: str, stderr: str, before: int
) -> dict:
    assert proc.returncode == expected_rc, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    assert "interrupted" in stderr and "finished points kept" in stderr
    doc = json.loads(out.read_text())  # whole, parseable JSON: never a truncated file
    assert doc["status"] == "interrupted"
    assert len(doc["points"]) >= before  # every point saved before the signal is still there
    assert (
        "status: interrupted" in stdout and "median" in stdout
    )  # the table of the finished points
    assert session_members(proc.pid) == []  # no worker, no helper left
    return doc


# --- signals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name
)
@pytest.mark.parametrize("target", ["process", "group"])
def test_a_signal_ends_the_sweep_cleanly(tmp_path, sig, target):
    """SIGTERM used to leave "status": "running" for ever and exit 143 with no table."""
    out, csv = tmp_path / "r.json", tmp_path / "r.csv"
    proc = start(*LONG, "--out", str(out), "--csv", str(csv))
    before = len(wait_for_points(out, 2, proc)["points"])
    (os.killpg if target == "group" else os.kill)(proc.pid, sig)
    stdout, stderr = proc.communicate(timeout=60)
    doc = check_interrupted(proc, out, 128 + sig, stdout, stderr, before)
    # --csv is written for the finished points too
    assert len(csv.read_text().splitlines()) == 1 + len(doc["points"])
    assert not list(tmp_path.glob(".*.lock")) and not list(
        tmp_path.glob(".*.tmp")
    )  # lock released, no debris


def test_signals_at_many_moments_never_leave_debris(tmp_path):
    """A sweep saves after every point, so a signal often lands mid-write; once in some tens of runs
    it landed between mkstemp and the clean-up and left `.r.json.XXXX.tmp`. Here SIGTERMs land at
    staggered moments across the saves of tiny points: every run ends interrupted, with a whole file,
    no lock and no temporary file (test_files.py pins the moment down deterministically)."""
    for k in range(8):
        d = tmp_path / str(k)
        d.mkdir()
        out = d / "r.json"
        proc = start(*LONG, "--out", str(out), cwd=d)
        before = len(wait_for_points(out, 1, proc)["points"])
        time.sleep(0.013 * k)
        os.kill(proc.pid, signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
        check_interrupted(proc, out, 143, stdout, stderr, before)
        assert sorted(p.name for p in d.iterdir()) == ["r.json"], (k, list(d.iterdir()))


# Two points that share the budget between them (a spread target no point reaches): the sweep
# cannot end before about the budget has passed since its first save, in a worker or in-process.
TIMED = [
    "--op",
    "dot",
    "--size",
    "64",
    "--threads",
    "1,2",
    "--budget",
    "4",
    "--target-spread",
    "0.0001",
]


def _stop_at(k: int, n: int, tmp_path: Path):
    """Run k of n: a sweep in workers or in-process, a signal (to the process or its group) at
    moment k/n of the first 85% of its budget after its first save. What was wrong, else None."""
    sig = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)[k % 3]
    isolate = ("always", "never")[k % 2]
    d = tmp_path / f"{k}-{isolate}-{sig.name}"
    d.mkdir()
    out = d / "r.json"
    proc = start(*TIMED, "--isolate", isolate, "--out", str(out), "--quiet", cwd=d)
    end = time.monotonic() + 120
    while not out.exists() and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.005)
    moment = 0.85 * 4 * k / n
    time.sleep(moment)
    try:
        (os.killpg if k % 4 < 2 else os.kill)(proc.pid, sig)
    except ProcessLookupError:
        pass
    stdout, stderr = proc.communicate(timeout=120)
    doc = read_doc(out) or {}
    left = [p.name for p in d.iterdir() if p.name != "r.json"]
    print(f"{d.name}: signal at {moment:.2f} s, exit {proc.returncode}, status {doc.get('status')}")
    if (
        proc.returncode != 128 + sig
        or doc.get("status") != "interrupted"
        or left
        or "Traceback" in stderr
        or session_members(proc.pid)
    ):
        return (
            f"{d.name} at {moment:.2f} s: exit {proc.returncode} (want {128 + sig}), status "
            f"{doc.get('status')}, debris {left}, stderr {stderr.strip()[-200:]!r}"
        )
    return None


def test_a_stop_signal_is_never_lost_at_any_of_40_moments(tmp_path):
    """A group SIGINT to `sweep --isolate always` seemed lost in 3 of 40 runs ("complete", exit 0).
    A stop dropped on its way could do that (the reaper swallowed one; a recorded stop was never
    looked at again: the tests below pin each down). Here 40 sweeps (workers and in-process alike,
    four at a time) each get SIGINT, SIGTERM or SIGHUP, to the process or its group, at a moment
    spread over the measuring: every one ends interrupted with the signal's exit status, no run
    ends complete, nothing is left behind."""
    from concurrent.futures import ThreadPoolExecutor

    n = 40
    with ThreadPoolExecutor(4) as pool:
        wrong = [w for w in pool.map(lambda k: _stop_at(k, n, tmp_path), range(n)) if w]
    assert not wrong, f"{len(wrong)} of {n} runs:\n" + "\n".join(wrong)


class _CtrlCInWait(subprocess.Popen):
    """A real process whose first blocking wait() is where a Ctrl-C lands."""

    landed = False

    def wait(self, timeout=None):
        if timeout is None and not self.landed:
            self.landed = True
            raise KeyboardInterrupt
        return super().wait(timeout)


def test_the_reaper_collects_its_worker_and_then_raises_the_stop():
    """reap() used to drop a KeyboardInterrupt that landed in its last wait: the sweep that called
    it ran on with the stop recorded and later signals absorbed."""
    from blastune.measure.children import reap

    proc = _CtrlCInWait(["true"])
    while proc.poll() is None:
        time.sleep(0.01)
    with pytest.raises(KeyboardInterrupt):
        reap(proc)
    assert proc.returncode == 0


def test_a_stop_while_the_reaper_waits_kills_and_collects_the_worker():
    """A worker that ignores SIGTERM, and a real SIGINT while reap() waits out its grace period."""
    from blastune.measure.children import reap

    proc = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; echo up; exec sleep 60"], stdout=subprocess.PIPE
    )
    assert proc.stdout.readline() == b"up\n"
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            reap(proc, grace=30)
    finally:
        timer.cancel()
        if proc.returncode is None:
            proc.kill()
            proc.wait()
            pytest.fail("the worker was left running, uncollected")
    assert proc.returncode == -signal.SIGKILL


DROPS_A_STOP = """
import json, os, signal, sys, time
import blastune

def on_point(event, data):
    if event == "done" and data["threads"] == 1:
        try:  # a callback (or a library) that catches everything: the stop is dropped here
            os.kill(os.getpid(), signal.SIG{sig})
            time.sleep(1)
        except BaseException:
            pass

try:
    blastune.sweep("add", [64], threads=[1, 2], min_repeats=3, budget=2, isolate="{isolate}",
                   out=sys.argv[1], on_point=on_point)
    print("complete")
except KeyboardInterrupt as exc:
    print("interrupted", exc.exit_status)
"""


@pytest.mark.parametrize("isolate", ["always", "never"])
@pytest.mark.parametrize("sig", ["INT", "HUP"])
def test_a_stop_dropped_on_its_way_still_ends_the_sweep_interrupted(tmp_path, isolate, sig):
    """The handler took the signal, code between it and the sweep dropped the exception: the sweep
    used to measure on and end "complete". A stop taken is a stop: no further point is measured."""
    out = tmp_path / "r.json"
    code = DROPS_A_STOP.format(sig=sig, isolate=isolate)
    r = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    want = 128 + getattr(signal, f"SIG{sig}")
    assert r.stdout.split() == ["interrupted", str(want)], r.stderr
    doc = json.loads(out.read_text())
    assert doc["status"] == "interrupted" and [p["threads"] for p in doc["points"]] == [1]


def test_a_double_ctrl_c_within_a_millisecond_still_saves_interrupted(tmp_path):
    out = tmp_path / "r.json"
    proc = start(*LONG, "--out", str(out))
    before = len(wait_for_points(out, 2, proc)["points"])
    os.killpg(proc.pid, signal.SIGINT)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    check_interrupted(proc, out, 130, stdout, stderr, before)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_to_the_group_ends_an_isolated_sweep_and_its_worker(tmp_path, sig):
    """The worker gets the signal too: that is an interrupt, not a 'worker failed' error."""
    out = tmp_path / "r.json"
    proc = start(*LONG, "--isolate", "always", "--out", str(out))
    before = len(wait_for_points(out, 1, proc)["points"])
    workers = children_of(proc.pid)
    os.killpg(proc.pid, sig)
    stdout, stderr = proc.communicate(timeout=60)
    check_interrupted(proc, out, 128 + sig, stdout, stderr, before)
    assert gone_within(workers, 1)


def test_an_isolate_worker_dies_with_its_parent_even_on_sigkill(tmp_path):
    """The worker used to run on for 7 s after its parent died: PR_SET_PDEATHSIG ends it at once."""
    out = tmp_path / "r.json"
    proc = start(*LONG, "--isolate", "always", "--out", str(out))
    wait_for_points(out, 1, proc)
    workers = [
        p
        for p in children_of(proc.pid)
        if "blastune.measure.sweep.worker_process"
        in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
    ]
    assert workers, "no worker process found"
    os.kill(proc.pid, signal.SIGKILL)  # no handler of ours runs: only the kernel can end the worker
    proc.communicate(timeout=30)
    assert gone_within(workers, 1.5), f"worker(s) {workers} outlived their parent"
    doc = json.loads(out.read_text())  # the last complete save, not a torn file
    assert doc["status"] == "running" and doc["points"]


# --- concurrent writers -------------------------------------------------------------------------------


@pytest.mark.parametrize("second", [["--force"], ["--resume"]], ids=["force", "resume"])
def test_a_second_sweep_on_the_same_out_is_refused_while_the_first_runs(tmp_path, second):
    """Both used to exit 0 with only the second run's points in the file."""
    out = tmp_path / "r.json"
    first = start(*LONG, "--out", str(out))
    wait_for_points(out, 1, first)
    r = subprocess.run(
        [BLASTUNE, "sweep", *TINY, "--out", str(out), *second],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "being written by another blastune run" in r.stderr and f"pid {first.pid}" in r.stderr
    os.kill(first.pid, signal.SIGTERM)
    stdout, stderr = first.communicate(timeout=60)
    doc = check_interrupted(first, out, 143, stdout, stderr, 1)
    assert {p["size"] for p in doc["points"]} <= {8 * i for i in range(1, 61)}
    # the lock went with the first run: now the file may be continued
    r = subprocess.run(
        [BLASTUNE, "sweep", *TINY, "--out", str(out), "--resume"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert r.returncode == 0, r.stderr


# --- full and read-only disks ---------------------------------------------------------------------------


@contextmanager
def tmpfs(path: Path, size: str, options: str = ""):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    path.mkdir()
    r = subprocess.run(
        [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"size={size}{',' + options if options else ''}",
            "tmpfs",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> None:
    """Fill the file system up to the last byte."""
    with open(directory / "filler", "wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass


def test_out_on_a_full_disk_is_one_line_and_the_old_file_survives(tmp_path):
    with tmpfs(tmp_path / "disk", "256k") as disk:
        out = disk / "r.json"
        old = '{"schema": "blastune.sweep/1", "points": [], "note": "the run before"}\n'
        out.write_text(old)
        fill(disk)
        r = subprocess.run(
            [BLASTUNE, "sweep", *TINY, "--out", str(out), "--force"],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=60,
        )
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert "No space left on device" in r.stderr and "Traceback" not in r.stderr
        assert out.read_text() == old  # atomic: the old file, whole
        assert sorted(p.name for p in disk.iterdir()) == [
            "filler",
            "r.json",
        ]  # no temporary or lock left


def test_csv_on_a_full_disk_is_one_line_and_the_results_are_saved(tmp_path):
    """--csv on a full disk used to cut the file and exit 1 with 'internal error'."""
    with tmpfs(tmp_path / "disk", "256k") as disk:
        out, csv = tmp_path / "r.json", disk / "r.csv"
        csv.write_text("the old csv\n")
        fill(disk)
        r = subprocess.run(
            [BLASTUNE, "sweep", *TINY, "--out", str(out), "--csv", str(csv), "--force"],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=60,
        )
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert "cannot write --csv" in r.stderr and "No space left on device" in r.stderr
        assert csv.read_text() == "the old csv\n"
        assert json.loads(out.read_text())["status"] == "complete"  # the measurement is not lost


def test_a_read_only_directory_is_refused_before_measuring(tmp_path):
    """Refused up front, not after 120 points: the refusal names the option (a save that failed
    after measuring names the results file and where the points were kept), and a writable --out
    beside a refused --csv or --plot is never written (a sweep that measured would have saved it)."""
    beside = tmp_path / "r.json"
    with tmpfs(tmp_path / "ro", "1m", "ro") as ro:
        for args in (
            ["--out", str(ro / "r.json")],
            ["--csv", str(ro / "r.csv"), "--out", str(beside)],
            ["--plot", str(ro / "r.png"), "--out", str(beside)],
        ):
            r = subprocess.run(
                [BLASTUNE, "sweep", *LONG, *args],
                capture_output=True,
                text=True,
                env=child_env(),
                timeout=60,
            )
            assert r.returncode == 2 and r.stderr.count("\n") == 1, (args, r.stderr)
            assert (
                f"cannot write {args[0]} {args[1]}: Read-only file system" in r.stderr
                or "needs matplotlib" in r.stderr
            ), r.stderr
            assert "measured" not in r.stderr and not beside.exists(), (args, r.stderr)


def test_resume_of_a_file_on_a_now_read_only_disk_leaves_it_untouched(tmp_path):
    with tmpfs(tmp_path / "disk", "1m") as disk:
        out = disk / "r.json"
        r = subprocess.run(
            [BLASTUNE, "sweep", *TINY, "--out", str(out)],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        saved = out.read_bytes()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        r = subprocess.run(
            [BLASTUNE, "sweep", *TINY, "--threads", "1,2", "--out", str(out), "--resume"],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=60,
        )
        assert (
            r.returncode == 2 and r.stderr.count("\n") == 1 and "Read-only file system" in r.stderr
        ), r.stderr
        assert out.read_bytes() == saved


# --- special files and links --------------------------------------------------------------------------


def test_csv_to_a_fifo_is_written_into_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    r = subprocess.run(
        [BLASTUNE, "sweep", *TINY, "--csv", str(fifo)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    got, _ = reader.communicate(timeout=30)
    assert r.returncode == 0, r.stderr
    assert got.startswith("op,lib,impl,size") and len(got.splitlines()) == 2
    assert fifo.is_fifo()


def test_csv_to_dev_stdout_pipes_the_rows(tmp_path):
    r = subprocess.run(
        f"{BLASTUNE} sweep {' '.join(TINY)} --csv /dev/stdout --json > /dev/null; "
        f"{BLASTUNE} sweep {' '.join(TINY)} --csv /dev/stdout | head -1",
        shell=True,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert r.stdout.startswith("op,lib,impl,size,dtype,threads"), (r.stdout, r.stderr)


def test_out_through_a_symlink_updates_the_target_and_keeps_the_link_and_mode(tmp_path):
    target, link = tmp_path / "real.json", tmp_path / "link.json"
    r = subprocess.run(
        [BLASTUNE, "sweep", *TINY, "--out", str(target)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    os.chmod(target, 0o644)
    link.symlink_to(target)
    r = subprocess.run(
        [BLASTUNE, "sweep", *TINY, "--threads", "1,2", "--out", str(link), "--resume"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and len(json.loads(target.read_text())["points"]) == 2
    assert (target.stat().st_mode & 0o777) == 0o644


def test_existing_csv_and_plot_are_not_replaced_without_force(tmp_path):
    for option, name in (("--csv", "mine.csv"), ("--plot", "mine.png")):
        path = tmp_path / name
        path.write_text("mine")
        r = subprocess.run(
            [BLASTUNE, "sweep", *TINY, option, str(path)],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=60,
        )
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert ("already exists: pass --force" in r.stderr) or "needs matplotlib" in r.stderr
        assert path.read_text() == "mine"
