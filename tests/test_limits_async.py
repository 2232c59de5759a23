"""blastune.limit inside asyncio tasks interleaving on one event loop (issue 11.7).

The semantics under test (blastune/control/limits.py, README "In Python"): every task is an owner of
its own limits, like a thread. Within a task the innermost limit holds and nesting unwinds exactly;
across tasks and threads the most restrictive of their innermost limits holds, because an OpenBLAS
pthreads pool is one per process. A limit is therefore a cap that holds at every step of the task
that entered it, whatever the other tasks do, and that goes away exactly when that task leaves it --
in whatever order the tasks leave. Counts are read back from the libraries through threadpoolctl.
"""

from __future__ import annotations

import asyncio
import random

import numpy  # noqa: F401
import pytest
import scipy.linalg  # noqa: F401
import threadpoolctl

import blastune
from blastune.control.limits import _S


def tp_counts():
    return sorted(
        d["num_threads"] for d in threadpoolctl.threadpool_info() if d["internal_api"] == "openblas"
    )


BASE = 4  # distinct from both limits below, so "restored" and "limited" cannot be confused


@pytest.fixture(autouse=True)
def base_count():
    blastune.set_threads(BASE)
    yield
    blastune.set_threads(2)
    assert _S.stacks == {}


def test_two_tasks_interleave_and_leave_in_the_order_they_entered():
    # The reported bug: A inside limit(1) ran with 2 threads once B entered limit(2) (one stack per
    # thread: B's entry became the innermost), and B ran with 1 once A left (A's exit popped B's).
    log = []
    a_in, b_in, a_out = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def task_a():
        with blastune.limit(1):
            log.append(("A entered", tp_counts()))
            a_in.set()
            await b_in.wait()
            log.append(("A after B entered", tp_counts()))
            await asyncio.sleep(0)
            log.append(("A again", tp_counts()))
        a_out.set()

    async def task_b():
        await a_in.wait()
        with blastune.limit(2):
            log.append(("B entered, A holds 1", tp_counts()))
            b_in.set()
            await a_out.wait()
            log.append(("B after A left", tp_counts()))
        log.append(("B left", tp_counts()))

    async def main():
        await asyncio.gather(task_a(), task_b())

    asyncio.run(main())
    assert log == [
        ("A entered", [1, 1]),
        (
            "B entered, A holds 1",
            [1, 1],
        ),  # a cap: B never runs more than its 2, here 1 while A holds 1
        ("A after B entered", [1, 1]),
        ("A again", [1, 1]),
        ("B after A left", [2, 2]),
        ("B left", [BASE, BASE]),
    ]
    assert tp_counts() == [BASE, BASE]


def test_nesting_inside_a_task_unwinds_exactly_while_another_task_holds_a_wider_limit():
    log = []
    other_in, done = asyncio.Event(), asyncio.Event()

    async def wide():
        with blastune.limit(3):
            other_in.set()
            await done.wait()

    async def nested():
        await other_in.wait()
        with blastune.limit(1):
            log.append(tp_counts())
            with blastune.limit(2):
                await asyncio.sleep(0)
                log.append(tp_counts())
            await asyncio.sleep(0)
            log.append(tp_counts())
        log.append(tp_counts())  # only the other task's limit(3) is left
        done.set()

    async def main():
        await asyncio.gather(wide(), nested())

    asyncio.run(main())
    assert log == [[1, 1], [2, 2], [1, 1], [3, 3]]
    assert tp_counts() == [BASE, BASE]


def test_a_cancelled_task_releases_its_limit():
    async def holder(entered):
        with blastune.limit(1):
            entered.set()
            await asyncio.sleep(3600)

    async def main():
        entered = asyncio.Event()
        t = asyncio.create_task(holder(entered))
        await entered.wait()
        during = tp_counts()
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        return during

    assert asyncio.run(main()) == [1, 1]
    assert tp_counts() == [BASE, BASE]


def test_many_tasks_in_random_order_never_exceed_their_own_limit():
    rng = random.Random(7)
    errors = []

    async def worker(k):
        n = 1 + k % 3
        for _ in range(20):
            with blastune.limit(n):
                for _ in range(rng.randint(0, 3)):
                    await asyncio.sleep(0)
                    got = tp_counts()
                    if max(got) > n:
                        errors.append((k, n, got))
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(*(worker(k) for k in range(12)))

    asyncio.run(main())
    assert errors == []
    assert tp_counts() == [BASE, BASE]


def test_a_task_and_a_thread_of_the_same_process():
    # to_thread runs in an executor thread: an owner of its own, capped by the task's limit too
    def in_thread():
        with blastune.limit(2):
            return tp_counts()

    async def main():
        with blastune.limit(1):
            seen = await asyncio.to_thread(in_thread)
            return seen, tp_counts()

    assert asyncio.run(main()) == ([1, 1], [1, 1])
    assert tp_counts() == [BASE, BASE]
