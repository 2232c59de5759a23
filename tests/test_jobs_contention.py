"""``jobs`` measures contention per batch with real processes: a CPU-burning competitor makes the
disturbed layouts contended; a layout that oversubscribes by design waits because of itself and is
*not* called contended on a quiet machine (its wait is the measurement of its oversubscription).

The machine these tests run on may be shared: the quiet-machine test measures the ambient load
first and skips, with the reason, when others keep a CPU busy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blastune.facts import schedstat
from blastune.measure.jobs.entry import Layout, run_jobs

TESTS = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(
    not schedstat.available(), reason="no per-thread schedstat on this kernel"
)


@pytest.fixture(autouse=True)
def _isolated(jobs_sandbox):
    pass


def ambient_other_cores(seconds: float = 1.0) -> float | None:
    from blastune.measure.load import LoadProbe

    probe = LoadProbe()
    time.sleep(seconds)
    return probe.other_cores()


def _hogs(cpus):
    """A busy loop pinned on each CPU. Unpinned, two hogs were once balanced onto one CPU and left the
    other to the serial layout, whose batch then rightly lost nothing: pinned, every CPU is shared."""
    return [
        subprocess.Popen(
            [sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{c}}})\nwhile True: pass"]
        )
        for c in cpus
    ]


def _stop(procs) -> None:
    for p in procs:
        p.kill()
        p.wait()


def test_a_competitor_makes_the_disturbed_batches_contended():
    cpus = sorted(os.sched_getaffinity(0))
    cores = len(cpus)
    hogs = _hogs(cpus)
    try:
        time.sleep(0.3)
        res = run_jobs(
            func="jobfuncs:small_dot",
            tasks=None,
            repeats=2,
            target_seconds=0.3,
            layouts=[Layout("process", cores, 1)],
        )
    finally:
        _stop(hogs)
    for r in res.results:
        assert len(r.wait_pcts) == len(r.walls) == len(r.contended_batches)
        assert r.contended and all(r.contended_batches), (r.layout.spec, r.lost_pcts, r.wait_pcts)
        assert min(r.lost_pcts) > 5
        assert any("contended" in n for n in r.notes)
    d = res.to_dict()
    assert d["contention"]["source"] == "schedstat" and d["results"][1]["contended"] is True
    assert any("disturbed by other programs" in w for w in res.warnings)


def test_oversubscribed_by_design_waits_but_is_not_contended_on_a_quiet_machine():
    cores = len(os.sched_getaffinity(0))
    other = ambient_other_cores()
    if other is None or other > 0.15:
        pytest.skip(f"other programs keep {other} CPUs busy: this test needs a quiet machine")
    res = run_jobs(
        op="dot",
        size=200,
        tasks=None,
        repeats=2,
        target_seconds=0.3,
        layouts=[Layout("process", cores, 2)],
    )
    naive = res.results[1]
    if any((o or 0) > 0.15 for r in res.results for o in r.other_cores):
        pytest.skip(
            f"other programs started during the run ({naive.other_cores}): not a quiet machine"
        )
    assert naive.self_oversubscribed and naive.expected_wait_pct == 100 * (2 * cores - cores)
    assert naive.wait_pct > 20, naive.wait_pcts  # it waited: because of itself
    assert not naive.contended, (naive.lost_pcts, naive.wait_pcts)
    assert any("self-inflicted" in n for n in naive.notes)
