"""The one output rule (blastune.core.files), on real files, FIFOs, devices, links and full disks."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading

import pytest

from blastune.core.files import (
    OutputExistsError,
    check_output,
    output_lock,
    save_output,
    write_output,
)
from blastune.errors import BlastuneError

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, tmpfs mounts)")


def test_refuses_existing_file_without_force(tmp_path):
    f = tmp_path / "mine.csv"
    f.write_text("precious\n")
    with pytest.raises(OutputExistsError, match="already exists: pass --force"):
        save_output(f, "new\n")
    assert f.read_text() == "precious\n"
    save_output(f, "new\n", force=True)
    assert f.read_text() == "new\n"


def test_python_option_name_in_message(tmp_path):
    f = tmp_path / "r.json"
    f.write_text("{}")
    with pytest.raises(OutputExistsError, match=r"pass force=True to overwrite"):
        check_output(f, option="force=True")


def test_new_file_honours_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_output(tmp_path / "a.txt", "x")
        write_output(tmp_path / "s.sh", "x", mode=0o755)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "s.sh").stat().st_mode) == 0o755


def test_existing_file_keeps_its_mode(tmp_path):
    f = tmp_path / "r.json"
    f.write_text("old")
    f.chmod(0o640)
    write_output(f, "new")
    assert stat.S_IMODE(f.stat().st_mode) == 0o640 and f.read_text() == "new"


def test_symlink_is_written_through(tmp_path):
    real = tmp_path / "data" / "real.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_output(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_fifo_is_written_into_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    save_output(fifo, "a,b\n1,2\n")  # no --force needed: nothing is replaced
    out, _ = reader.communicate(timeout=10)
    assert out == b"a,b\n1,2\n"
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@root_only
def test_dev_null_stays_a_device():
    save_output("/dev/null", "x" * 100, force=True)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@root_only
def test_character_device_node_is_not_replaced(tmp_path):
    node = tmp_path / "null"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    save_output(node, "x", force=True)
    assert stat.S_ISCHR(node.lstat().st_mode)


def test_directory_and_trailing_slash_refused(tmp_path):
    with pytest.raises(BlastuneError, match="is a directory"):
        check_output(tmp_path, force=True)
    with pytest.raises(BlastuneError, match="directory name, not a file name"):
        check_output(str(tmp_path / "newdir") + "/")
    assert not (tmp_path / "newdir").exists()


def test_long_name_is_one_line_error(tmp_path):
    with pytest.raises(BlastuneError, match="too long"):
        save_output(tmp_path / ("x" * 300), "data")
    ok = tmp_path / ("y" * 250)
    save_output(ok, "data")  # a 250-byte name still gets a temporary name within NAME_MAX
    assert ok.read_text() == "data"


def test_read_only_directory(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    (d / "keep.json").write_text("old")
    d.chmod(0o555)
    try:
        if os.geteuid() == 0:  # root ignores modes: use a read-only bind mount instead
            pytest.skip("root writes into 0555 directories; the tmpfs test covers read-only mounts")
        with pytest.raises(BlastuneError, match="Permission denied"):
            save_output(d / "keep.json", "new", force=True)
        assert (d / "keep.json").read_text() == "old"
    finally:
        d.chmod(0o755)


@root_only
def test_full_disk_keeps_old_file_and_leaves_no_temp(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        f = mnt / "plot.png"
        f.write_bytes(b"\x89PNG old image")
        with pytest.raises(BlastuneError, match="No space left on device"):
            save_output(f, b"\0" * (256 * 1024), force=True)
        assert f.read_bytes() == b"\x89PNG old image"
        assert sorted(p.name for p in mnt.iterdir()) == ["plot.png"]
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        with pytest.raises(BlastuneError, match="Read-only file system"):
            save_output(mnt / "new.csv", "x")
    finally:
        subprocess.run(["umount", str(mnt)])


def test_lock_refuses_second_owner_across_processes(tmp_path):
    out = tmp_path / "same.json"
    code = (
        "import sys, time\nfrom blastune.core.files import output_lock\n"
        "with output_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(30)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(
            BlastuneError, match=rf"being written by another blastune run \(pid {holder.pid}\)"
        ):
            with output_lock(out):
                pass
    finally:
        holder.kill()
        holder.wait()
    with output_lock(out):  # the holder died: its flock died with it
        pass
    assert not list(tmp_path.glob(".same.json.lock"))


def test_lock_is_exclusive_under_racing_threads(tmp_path):
    out = tmp_path / "r.json"
    inside, errors, lock = [], [], threading.Lock()
    barrier = threading.Barrier(8)

    def worker():
        barrier.wait()
        for _ in range(50):
            try:
                with output_lock(out):
                    with lock:
                        inside.append(1)
                        assert len(inside) == 1, "two owners at once"
                    with lock:
                        inside.pop()
            except BlastuneError:
                pass
            except AssertionError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# --- a stop signal waits for a write (found by repetition: a SIGHUP to a sweep's group once left
# --- `.r.json.XXXX.tmp` beside the results: the signal raised between mkstemp and its clean-up) ---


def _stop_inside(monkeypatch, module, name):
    """Make ``module.name`` send this process a SIGTERM in the middle of the call, as a signal that
    arrives at that moment would; the first call only."""
    import signal as _signal

    real, fired = getattr(module, name), []

    def wrapped(*a, **kw):
        out = real(*a, **kw)
        if not fired:
            fired.append(True)
            os.kill(os.getpid(), _signal.SIGTERM)  # the handler runs before the next bytecode here
        return out

    monkeypatch.setattr(module, name, wrapped)
    return fired


@pytest.mark.parametrize("where", ["mkstemp", "fsync", "replace"])
def test_a_stop_mid_write_is_raised_after_the_file_is_whole_and_leaves_no_debris(
    tmp_path, monkeypatch, where
):
    import tempfile

    from blastune.measure.signals import Interrupted, stop_on_signals

    f = tmp_path / "r.json"
    f.write_text("old\n")
    fired = _stop_inside(monkeypatch, tempfile if where == "mkstemp" else os, where)
    with pytest.raises(Interrupted) as info, stop_on_signals():
        write_output(f, "new\n")
        pytest.fail("the stop was lost")
    assert fired and info.value.signum == 15
    assert f.read_text() == "new\n"  # the write finished before the stop was raised
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no .tmp left beside it


def test_a_stop_while_locking_releases_the_lock_and_leaves_no_sidecar(tmp_path, monkeypatch):
    import fcntl

    from blastune.measure.signals import Interrupted, stop_on_signals

    f = tmp_path / "r.json"
    fired = _stop_inside(monkeypatch, fcntl, "flock")
    entered = []
    with pytest.raises(Interrupted), stop_on_signals():
        with output_lock(f):
            entered.append(True)
    assert fired and not entered  # raised before the body, after the lock was owned
    assert list(tmp_path.iterdir()) == []  # the sidecar went with the release
    with output_lock(f):  # and the lock is free again
        pass


@pytest.mark.timeout(120)
def test_ctrl_c_still_works_while_waiting_for_another_writers_lock(tmp_path):
    """The wait for another writer holds nothing half made: a stop there is raised at once. The wait
    here has no end and the holder never lets go, so a stop kept until the wait ends hangs the test
    (ended by its timeout) instead of passing late."""
    import signal as _signal

    from blastune.measure.signals import Interrupted, stop_on_signals

    f = tmp_path / "profile.json"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from blastune.core.files import output_lock\n"
            f"with output_lock({str(f)!r}):\n"
            "    print('held', flush=True); time.sleep(3600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        timer = threading.Timer(0.3, os.kill, (os.getpid(), _signal.SIGINT))
        timer.start()
        with pytest.raises(Interrupted), stop_on_signals():
            with output_lock(f, wait=float("inf")):
                pytest.fail("locked a file another process holds")
    finally:
        holder.kill()
        holder.wait()
