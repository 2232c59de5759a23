"""The competing-load probe that flags sweep points taken while other processes ran."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from blastune.measure import load as cpuload


def test_parses_the_proc_stat_cpu_line():
    hz = cpuload._HZ
    line = "cpu  100 20 30 5000 40 5 6 7 0 0"
    # user + nice + system + irq + softirq + steal; idle and iowait are not busy
    busy, steal = cpuload.machine_seconds(line)
    assert busy == pytest.approx((100 + 20 + 30 + 5 + 6 + 7) / hz)
    assert steal == pytest.approx(7 / hz)
    assert cpuload.machine_seconds("intr 1 2 3") is None


def test_a_spinning_neighbour_is_seen_and_our_own_work_is_not():
    probe = cpuload.LoadProbe()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.5:  # our own CPU time must not count as "others"
        pass
    own = probe.other_cores()
    assert own is not None and own >= 0

    spinner = subprocess.Popen(
        [sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<1.5: pass"]
    )
    try:
        time.sleep(0.2)  # let it start
        probe = cpuload.LoadProbe()
        time.sleep(1.0)
        other = probe.other_cores()
    finally:
        spinner.wait(timeout=30)
    # the spinner alone is about one core; the rest of the machine can only add to it
    assert other >= 0.6
