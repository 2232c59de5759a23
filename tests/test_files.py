"""The one output rule (blastune.core.files), on real files, FIFOs, devices, links and full disks."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from blastune.core.files import (OutputExistsError, check_output, output_lock, save_output,
                                 write_output)
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
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
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
    code = ("import sys, time\nfrom blastune.core.files import output_lock\n"
            "with output_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(30)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(BlastuneError, match=rf"being written by another blastune run \(pid {holder.pid}\)"):
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
