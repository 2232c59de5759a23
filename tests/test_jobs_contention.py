"""``jobs`` measures contention per batch with real processes: a CPU-burning competitor makes the
disturbed layouts contended; a layout that oversubscribes by design waits because of itself and is
*not* called contended on a quiet machine (its wait is the measurement of its oversubscription).

The machine these tests run on may be shared: the quiet-machine test runs through
``tests.quiet.quietly`` (others measured before and after, and by the run itself during it; run
again once, then skipped with the figures).
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
from tests.quiet import QUIET_SHARE, quietly

TESTS = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(
    not schedstat.available(), reason="no per-thread schedstat on this kernel"
)


@pytest.fixture(autouse=True)
def _isolated(jobs_sandbox):
    pass


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

    def others_during(res) -> str | None:
        # the layout judged fills every CPU: others that used more beside it took some from it (the
        # serial baseline leaves CPUs idle, which a niced background job may fill harmlessly)
        seen = [o for o in res.results[1].other_cores if o is not None]
        if max(seen, default=0.0) <= QUIET_SHARE * cores:
            return None
        return f"other programs used {', '.join(f'{o:.2f}' for o in seen)} CPUs in its batches"

    res = quietly(
        lambda: run_jobs(
            op="dot",
            size=200,
            tasks=None,
            repeats=2,
            target_seconds=0.3,
            layouts=[Layout("process", cores, 2)],
        ),
        disturbed=others_during,
    )
    naive = res.results[1]
    assert naive.self_oversubscribed and naive.expected_wait_pct == 100 * (2 * cores - cores)
    assert naive.wait_pct > 20, naive.wait_pcts  # it waited: because of itself
    assert not naive.contended, (naive.lost_pcts, naive.wait_pcts)
    assert any("self-inflicted" in n for n in naive.notes)
