"""`ps` judges a process contended by a share of the CPU time it wanted, not of one CPU.

0.2.0 summed the run-queue wait over a process's threads and compared it with 5 % of the interval:
a 64-thread BLAS process whose threads each waited a harmless 0.1 % of their time (timer ticks,
kernel threads) passed that on a 128-core node. The figures below are what
``/proc/PID/task/*/schedstat`` gives over a 1 s interval for processes of 1 to 128 threads.
"""

from __future__ import annotations

import pytest

from blastune.facts.census import BUSY_PERCENT, waited_too_long
from blastune.facts.schedstat import CONTENDED_WAIT_PCT


@pytest.mark.parametrize("threads", [1, 2, 16, 64, 128])
def test_the_rule_is_the_same_at_every_thread_count(threads):
    # every thread busy the whole second and waiting a background 0.1%: not contended
    assert not waited_too_long(run_s=threads * 0.999, wait_s=threads * 0.001, interval=1.0)
    # every thread waiting 30% of the time it wanted (a competitor on its CPUs): contended
    assert waited_too_long(run_s=threads * 0.7, wait_s=threads * 0.3, interval=1.0)
    # just either side of the threshold, as a share of the demand
    share = CONTENDED_WAIT_PCT / 100
    for factor, contended in ((0.9, False), (1.1, True)):
        waited = share * factor
        assert waited_too_long(threads * (1 - waited), threads * waited, 1.0) is contended


def test_0_2_0_called_a_quiet_64_thread_process_contended():
    run, wait = 64 * 0.999, 64 * 0.001
    assert 100 * wait / 1.0 > CONTENDED_WAIT_PCT  # the old rule: 6.4 % of one CPU, "contended"
    assert not waited_too_long(run, wait, 1.0)


def test_a_process_that_barely_ran_is_not_judged():
    # a daemon waking up: half of its 20 ms waited, but it was not computing
    assert not waited_too_long(run_s=0.01, wait_s=0.01, interval=1.0)
    edge = BUSY_PERCENT / 100
    assert waited_too_long(run_s=edge / 2, wait_s=edge / 2, interval=1.0)
    assert not waited_too_long(0.0, 0.0, 1.0) and not waited_too_long(1.0, 1.0, 0.0)
