"""Outputs under hostile conditions, through the installed console script (issue 20: 1, 2, 5, 11).

A running sweep's file is refused to every other output (``--csv``, ``slurm -o``, ``jobs --out``),
``--force`` or not, also after its lock sidecar was deleted; a full disk at the final save keeps the
measurement (table printed, a fallback file named, exit 2); a FIFO never hangs a run (``--out``
must be a regular file; ``--csv`` into a FIFO nobody reads gives up in one line; a second signal
ends a stop stuck on it); an output is never one of the command's inputs; a document read back
is capped. Real processes, real signals, a real FIFO, a real small tmpfs (as root).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import child_env
from tests.test_faults_sweep import (
    LONG,
    TINY,
    check_interrupted,
    fill,
    start,
    tmpfs,
    wait_for_points,
)

BLASTUNE = shutil.which("blastune")
pytestmark = pytest.mark.skipif(
    BLASTUNE is None, reason="blastune console script not installed (pip install -e .)"
)
DATA = Path(__file__).resolve().parent / "data" / "v0_1_0"


def run(*args, env=None, timeout=120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BLASTUNE, *map(str, args)],
        capture_output=True,
        text=True,
        env=env or child_env(),
        timeout=timeout,
        **kw,
    )


def one_line_error(r, *needles) -> None:
    assert r.returncode == 2 and r.stderr.count("\n") == 1, (r.returncode, r.stderr)
    assert r.stderr.startswith("blastune: error: ") and "Traceback" not in r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr


def stop_first(first, out: Path) -> dict:
    os.kill(first.pid, signal.SIGTERM)
    stdout, stderr = first.communicate(timeout=60)
    return check_interrupted(first, out, 143, stdout, stderr, 1)


# --- item 1: every output takes the lock a running sweep holds ------------------------------------


def test_csv_slurm_and_jobs_outputs_refuse_the_file_a_running_sweep_owns(tmp_path):
    """`sweep -o b.json --csv a.json --force` used to turn the running sweep's a.json into a CSV."""
    a = tmp_path / "a.json"
    first = start(*LONG, "--out", str(a))
    wait_for_points(a, 1, first)
    msg = "is being written by another blastune run"
    one_line_error(run("sweep", *TINY, "--out", tmp_path / "b.json", "--csv", a, "--force"), msg)
    one_line_error(run("slurm", "--tasks", "1", "--out", a, "--force", "--", "true"), msg)
    one_line_error(run("jobs", "-n", "1", "-r", "1", "-l", "serial", "--out", a, "--force"), msg)
    doc = stop_first(first, a)
    assert doc["schema"] == "blastune.sweep/1"  # the sweep's own JSON, whole
    assert not (tmp_path / "b.json").exists()  # refused before measuring anything


# --- item 11: a deleted sidecar does not let a second owner in ------------------------------------


def test_deleting_the_lock_sidecar_mid_run_does_not_let_a_second_sweep_write_the_file(tmp_path):
    """Both used to exit 0, the second run's points replacing the first's."""
    out = tmp_path / "r.json"
    first = start(*LONG, "--out", str(out))
    wait_for_points(out, 1, first)
    (tmp_path / ".r.json.lock").unlink()
    r = run("sweep", *TINY, "--out", out, "--force")
    one_line_error(r, "is being written by another blastune run")
    doc = stop_first(first, out)
    assert {p["size"] for p in doc["points"]} <= {8 * i for i in range(1, 61)}
    assert doc["settings"]["budget_s"] == 120  # the first run's file, not the second's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no sidecar, no temporary left


def test_a_run_whose_sidecar_was_taken_over_does_not_replace_the_new_owners_file(tmp_path):
    """No file yet (a jobs run saves at the end): the sidecar is all there is. Deleted, a second
    owner takes a new one; the first run's save is then refused, not written over the second's."""
    import sys

    out = tmp_path / "j.json"
    holder = (
        "import sys, time\nfrom blastune.core.files import output_lock, write_output\n"
        "with output_lock(sys.argv[1]):\n"
        "    print('locked', flush=True)\n"
        "    sys.stdin.readline()\n"
        "    try:\n"
        "        write_output(sys.argv[1], sys.argv[2])\n"
        "    except Exception as e:\n"
        "        print(e, flush=True)\n"
    )
    first = subprocess.Popen(
        [sys.executable, "-c", holder, str(out), "first"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    assert first.stdout.readline().strip() == "locked"
    (tmp_path / ".j.json.lock").unlink()
    second = subprocess.Popen(
        [sys.executable, "-c", holder, str(out), "second"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    assert second.stdout.readline().strip() == "locked"
    second_out = second.communicate("\n", timeout=60)[0]  # the second saves and lets go ...
    first_out = first.communicate("\n", timeout=60)[0]  # ... the first must not replace that
    assert second_out == ""
    assert "changed while this run held it" in first_out, first_out
    assert out.read_text() == "second"  # the new owner's file, not replaced by the first run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.json"]


# --- item 11: an output is never one of the inputs ------------------------------------------------


def test_plot_and_report_refuse_to_write_over_their_own_input(tmp_path):
    pytest.importorskip("matplotlib")
    src = tmp_path / "in.svg"
    shutil.copy(DATA / "sweep.json", src)  # a results file that happens to end in .svg
    before = src.read_bytes()
    one_line_error(run("plot", src, "-o", src, "--force"), "is also an input")
    page = tmp_path / "in.html"
    shutil.copy(DATA / "sweep.json", page)
    one_line_error(run("report", "--no-doctor", "-o", page, page, "--force"), "is also an input")
    link = tmp_path / "link.svg"
    link.symlink_to(src)  # the same file by another name
    one_line_error(run("plot", src, "-o", link, "--force"), "is also an input")
    assert src.read_bytes() == before and page.read_bytes() == (DATA / "sweep.json").read_bytes()


# --- item 2: a full disk at the final save --------------------------------------------------------


def test_jobs_out_on_a_full_disk_prints_the_table_and_keeps_the_results(tmp_path):
    """The whole measurement used to be thrown away: one error line, no table."""
    keep = tmp_path / "tmp"
    keep.mkdir()
    env = child_env({"TMPDIR": str(keep), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    with tmpfs(tmp_path / "small", "64k") as disk:
        fill(disk)
        r = run("jobs", "-s", "50", "-b", "2", "--out", disk / "j.json", env=env)
        assert r.returncode == 2, r.stderr
        assert "fastest:" in r.stdout and "tasks/s" in r.stdout  # the table is shown
        last = r.stderr.splitlines()[-1]
        assert "cannot write results file" in last and "No space left on device" in last, r.stderr
        kept = Path(last.rsplit("kept in ", 1)[1])
        assert kept.parent == keep
        doc = json.loads(kept.read_text())
        assert doc["schema"].startswith("blastune.jobs/") and doc["status"] == "complete"
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no partial file, no sidecar


def test_sweep_out_filling_up_mid_run_prints_the_table_and_keeps_the_points(tmp_path):
    keep = tmp_path / "tmp"
    keep.mkdir()
    with tmpfs(tmp_path / "small", "64k") as disk:
        fill(disk)
        filler = disk / "filler"
        # two pages: the empty document fits, one with points not beside it
        os.truncate(filler, filler.stat().st_size - 8192)
        out = disk / "r.json"
        r = run("sweep", *LONG, "--out", out, env=child_env({"TMPDIR": str(keep)}))
        assert r.returncode == 2, r.stderr
        assert "median" in r.stdout and "status: failed" in r.stdout, r.stdout  # the points
        last = r.stderr.splitlines()[-1]
        assert "No space left on device" in last and "measured are kept in" in last, r.stderr
        kept = json.loads(Path(last.rsplit("kept in ", 1)[1]).read_text())
        assert kept["status"] == "failed" and len(kept["points"]) >= 1
        assert json.loads(out.read_text())["schema"] == "blastune.sweep/1"  # the last good save
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "r.json"]


# --- item 5: FIFOs never hang a run ---------------------------------------------------------------


def test_sweep_out_to_a_fifo_or_stdout_is_refused_up_front(tmp_path):
    """`sweep -o FIFO` used to block for ever in its second save once the reader had gone."""
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.DEVNULL)
    try:
        one_line_error(
            run("sweep", "--size", "50", "-t", "1", "-b", "1", "-o", fifo, timeout=60),
            "must be a regular file",
        )
    finally:
        reader.kill()
        reader.wait()
    # `--out /dev/stdout --json` wrote one document per point, then the --json one: several in a row
    r = subprocess.run(
        f"{BLASTUNE} sweep {' '.join(TINY)} --out /dev/stdout --json | cat",
        shell=True,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert r.stdout == "" and r.stderr.count("\n") == 1, r.stderr
    assert "is stdout, where --json" in r.stderr


def test_csv_into_a_fifo_nobody_reads_gives_up_in_one_line(tmp_path):
    fifo, out = tmp_path / "p", tmp_path / "r.json"
    os.mkfifo(fifo)
    r = run("sweep", *TINY, "--csv", fifo, "--out", out, timeout=120)
    one_line_error(r, "no program is reading the FIFO")
    assert json.loads(out.read_text())["status"] == "complete"  # the results are saved all the same


def test_a_second_signal_ends_a_stop_stuck_on_a_fifo(tmp_path):
    """The first signal's orderly stop writes --csv into a FIFO nobody reads; a second signal
    later than a second after the first used to be absorbed, and the run hung for ever."""
    fifo, out = tmp_path / "p", tmp_path / "r.json"
    os.mkfifo(fifo)
    proc = start(*LONG, "--out", str(out), "--csv", str(fifo))
    wait_for_points(out, 1, proc)
    os.kill(proc.pid, signal.SIGINT)
    time.sleep(2.0)
    assert proc.poll() is None  # stuck waiting for a reader of the FIFO
    assert json.loads(out.read_text())["status"] == "interrupted"  # the orderly stop saved first
    os.kill(proc.pid, signal.SIGTERM)
    try:
        _, stderr = proc.communicate(timeout=5)  # at once: well before the FIFO wait would give up
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the second signal did not end the run")
    assert proc.returncode == 143, stderr
    assert "SIGTERM again while stopping: ended at once" in stderr and "Traceback" not in stderr
    assert json.loads(out.read_text())["status"] == "interrupted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p", "r.json"]  # no sidecar left behind


# --- cosmetic items -------------------------------------------------------------------------------


def test_compare_refuses_an_endless_input_in_one_line(tmp_path):
    """`compare /dev/zero x.json` used to read for ever."""
    r = run("compare", "/dev/zero", DATA / "sweep.json", timeout=120)
    one_line_error(r, "/dev/zero: larger than 256 MiB")


def test_jobs_force_without_out_and_out_on_stdout_with_json_are_refused(tmp_path):
    one_line_error(run("jobs", "-n", "1", "-r", "1", "-l", "serial", "--force"), "--force", "--out")
    r = subprocess.run(
        f"{BLASTUNE} jobs -n 1 -r 1 -l serial --out /dev/stdout --json | cat",
        shell=True,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert r.stdout == "" and r.stderr.count("\n") == 1 and "is stdout" in r.stderr, r.stderr


def test_a_signal_before_anything_was_saved_does_not_claim_a_saved_file(tmp_path):
    """'finished points kept in r.json' was printed though no r.json existed."""
    for delay in (0.3, 0.6, 0.9, 1.2, 1.5):
        out = tmp_path / f"r{delay}.json"
        proc = start(*TINY, "--out", str(out))
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        if f"kept in {out}" in stderr:
            assert json.loads(out.read_text())["points"], (delay, stderr)
        if "interrupted (" in stderr and not out.exists():
            assert "nothing was measured or saved" in stderr, (delay, stderr)


def test_in_a_host_program_a_later_second_signal_raises_again_instead_of_ending_it():
    """blastune.sweep() in a notebook: a second interrupt must end a stuck stop, not the kernel."""
    from blastune.measure.signals import SECOND_SIGNAL_GRACE_S, Interrupted, stop_on_signals

    with stop_on_signals() as state:
        with pytest.raises(Interrupted):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
        os.kill(os.getpid(), signal.SIGTERM)  # at once: the same request, absorbed
        time.sleep(SECOND_SIGNAL_GRACE_S + 0.2)
        with pytest.raises(Interrupted):  # later: "stop now" -- raised where the stop waits
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
    assert state.signum == signal.SIGTERM
