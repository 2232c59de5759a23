"""blastune.limit / get_threads / set_threads / worker_initializer against the real pip OpenBLAS copies.

The pip wheels load two OpenBLAS copies (numpy's libscipy_openblas64_, scipy's libscipy_openblas);
every assertion reads the count back from the libraries themselves, through threadpoolctl too.
"""

from __future__ import annotations

import json
import threading
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy  # noqa: F401
import pytest
import scipy.linalg  # noqa: F401
import threadpoolctl

import blastune
from blastune.errors import BlastuneError
from tests.conftest import child_env, run_python


def tp_counts():
    """Independent read-out: threadpoolctl's view of every OpenBLAS copy."""
    return sorted(
        d["num_threads"] for d in threadpoolctl.threadpool_info() if d["internal_api"] == "openblas"
    )


@pytest.fixture(autouse=True)
def base_two_threads():
    blastune.set_threads(2)
    yield
    blastune.set_threads(2)


def test_both_openblas_copies_are_controlled():
    assert len(blastune.get_threads()) == 2
    with blastune.limit(1):
        assert set(blastune.get_threads().values()) == {1}
        assert tp_counts() == [1, 1]
    assert tp_counts() == [2, 2]


def test_nesting_unwinds_exactly():
    with blastune.limit(1):
        with blastune.limit(2):
            assert tp_counts() == [2, 2]
            with blastune.limit(1):
                assert tp_counts() == [1, 1]
            assert tp_counts() == [2, 2]
        assert tp_counts() == [1, 1]
    assert tp_counts() == [2, 2]


@pytest.mark.parametrize("exc", [ValueError, KeyboardInterrupt])
def test_restores_on_exception_and_keyboard_interrupt(exc):
    with pytest.raises(exc):
        with blastune.limit(1):
            assert tp_counts() == [1, 1]
            raise exc()
    assert tp_counts() == [2, 2]


def test_decorator_and_reuse():
    seen = []

    @blastune.limit(1)
    def work():
        seen.append(tp_counts())

    work()
    work()
    assert seen == [[1, 1], [1, 1]]
    assert tp_counts() == [2, 2]


def test_jobs_divides_usable_cores():
    cores = blastune.cpu_info().usable_cores
    assert blastune.limit(jobs=2).n == max(1, cores // 2)
    assert blastune.limit(jobs=10**6).n == 1


def test_restores_the_exact_previous_count_not_a_default():
    blastune.set_threads(1)
    with blastune.limit(2):
        assert tp_counts() == [2, 2]
    assert tp_counts() == [1, 1]


def test_worker_thread_limit_takes_effect_despite_threadpoolctl_controlling_thread():
    # threadpoolctl's OpenBLAS controller obeys only the first thread that set a count: after the
    # main thread sets 2 through it, another thread's set_num_threads silently does nothing.
    ctl = threadpoolctl.ThreadpoolController()
    for c in ctl.lib_controllers:
        if c.internal_api == "openblas":
            c.set_num_threads(2)
    result = {}

    def worker():
        for c in ctl.lib_controllers:
            if c.internal_api == "openblas":
                c.set_num_threads(1)
        result["threadpoolctl"] = tp_counts()
        with blastune.limit(1):
            result["blastune"] = tp_counts()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    threadpoolctl.OpenBLASController.clear_controlling_thread(force=True)
    assert result["threadpoolctl"] == [2, 2]  # the trap blastune must not fall into
    assert result["blastune"] == [1, 1]
    assert tp_counts() == [2, 2]


def test_eight_threads_most_restrictive_holds_and_original_returns():
    barrier = threading.Barrier(8)
    errors = []

    def worker(k):
        n = 1 if k % 2 else 2
        try:
            for i in range(300):
                with blastune.limit(n):
                    got = set(blastune.get_threads().values())
                    # our own limit is active, so the count can never exceed it
                    if max(got) > n:
                        errors.append((k, i, got))
                if i == 0:
                    barrier.wait()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert tp_counts() == [2, 2]
    from blastune.control.limits import _S

    assert _S.stacks == {} and _S.originals == {}


def test_held_limit_in_one_thread_caps_others_until_it_exits():
    entered, release = threading.Event(), threading.Event()

    def holder():
        with blastune.limit(1):
            entered.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    entered.wait(10)
    with blastune.limit(2):
        assert tp_counts() == [1, 1]  # the other thread's tighter limit holds
    assert tp_counts() == [1, 1]
    release.set()
    t.join()
    assert tp_counts() == [2, 2]


def test_set_threads_during_a_limit_becomes_the_base():
    with blastune.limit(1):
        blastune.set_threads(2)
        assert tp_counts() == [1, 1]
    assert tp_counts() == [2, 2]


@pytest.mark.parametrize("bad", [0, -3, "abc", 1.5, True, 2**32])  # 2**32 would reach a C int as 0
def test_bad_counts_are_one_clear_error(bad):
    with pytest.raises(BlastuneError, match="must be"):
        blastune.limit(bad)


@pytest.mark.parametrize(
    "make",
    [
        lambda: blastune.limit(1, api="cuda"),
        lambda: blastune.limit(1, api=["blas"]),  # was a plain TypeError (unhashable list)
        lambda: blastune.worker_initializer(
            1, api="x"
        ),  # was a BrokenProcessPool, later, in the pool
        lambda: blastune.get_threads(api=None),
        lambda: blastune.set_threads(1, api={"blas"}),
    ],
)
def test_bad_api_is_one_clear_error_where_it_is_given(make):
    with pytest.raises(BlastuneError, match="unknown api .*: choose blas, openmp or all"):
        make()


def test_bad_api_and_jobs():
    with pytest.raises(BlastuneError, match="blas, openmp or all"):
        blastune.limit(1, api="cuda")
    with pytest.raises(BlastuneError, match="jobs"):
        blastune.limit(jobs=0)


def test_worker_initializer_in_process_pool():
    with ProcessPoolExecutor(2, initializer=blastune.worker_initializer(1)) as pool:
        assert list(pool.map(_child_counts_remote, range(2))) == [[1, 1], [1, 1]]


def _child_counts_remote(_):
    import os

    import blastune as b

    return sorted(b.get_threads().values()) if os.environ["OPENBLAS_NUM_THREADS"] == "1" else None


def test_library_loaded_after_first_call_is_limited():
    code = """
import numpy, blastune, json
with blastune.limit(1):
    pass
import scipy.linalg   # loads scipy's own OpenBLAS copy after the first limit
with blastune.limit(1):
    inside = sorted(blastune.get_threads().values())
print(json.dumps({"inside": inside, "after": sorted(blastune.get_threads().values())}))
"""
    r = run_python(code, env=child_env(threads=None))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["inside"] == [1, 1]
    assert out["after"] == [2, 2]  # both back to the library default on 2 cores


def test_library_imported_inside_an_active_limit_is_capped_on_next_look():
    code = """
import numpy, blastune, json
with blastune.limit(1):
    import scipy.linalg
    print(json.dumps(sorted(blastune.get_threads().values())))
"""
    r = run_python(code, env=child_env(threads=None))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [1, 1]


def test_limit_object_is_cheap_to_reuse_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lim = blastune.limit(1)
        for _ in range(100):
            with lim:
                pass
    assert tp_counts() == [2, 2]


def test_fork_while_another_thread_holds_a_limit():
    # multiprocessing forks on Linux: only the forking thread lives on in the child. A lock held by
    # another thread at that moment, or that thread's limit, must not follow it there.
    code = """
import json, os, threading
import numpy, scipy.linalg, blastune
from blastune.control import limits
base = sorted(blastune.get_threads().values())
inside, leave = threading.Event(), threading.Event()
def holder():
    with blastune.limit(1):
        with limits._S.lock:   # caught mid-update by the fork
            inside.set()
            leave.wait()
t = threading.Thread(target=holder)
t.start()
inside.wait()
pid = os.fork()
if pid == 0:
    with blastune.limit(1):   # would hang for ever on the inherited lock
        within = sorted(blastune.get_threads().values())
    print(json.dumps({"base": base, "child_within": within,
                      "child_after": sorted(blastune.get_threads().values())}), flush=True)
    os._exit(0)
leave.set()
t.join()
_, status = os.waitpid(pid, 0)
assert status == 0, status
"""
    r = run_python(code, env=child_env(threads=2), timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["base"] == [2, 2]
    assert out["child_within"] == [1, 1]
    assert out["child_after"] == [2, 2]  # the dead thread's limit does not stay behind in the child


def test_a_refusal_turned_error_by_warning_filters_leaves_no_limit_behind():
    # OpenBLAS caps its pool at the build's maximum (64 for the pip wheels) and reports that back.
    # Under `-W error` (many projects' pytest setting) the warning raises inside __enter__: the
    # with-body never runs, so nothing may stay limited, half-set or stacked.
    from blastune.control import limits
    from blastune.errors import NotControllableWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", NotControllableWarning)
        with pytest.raises(NotControllableWarning, match="asked for 1000000 threads"):
            with blastune.limit(1_000_000):
                pytest.fail("the body must not run")
    assert tp_counts() == [2, 2]
    assert limits._S.stacks == {} and limits._S.originals == {}
    with blastune.limit(1):
        assert tp_counts() == [1, 1]
    assert tp_counts() == [2, 2]


def test_numpy_integers_are_thread_counts():
    # counts are often computed with numpy (np.int64 is not an int subclass); floats still are not counts
    import numpy as np

    with blastune.limit(np.int64(1)):
        assert tp_counts() == [1, 1]
    with blastune.limit(jobs=np.int32(2)):
        assert tp_counts() == [max(1, blastune.cpu_info().usable_cores // 2)] * 2
    assert tp_counts() == [2, 2]
    with pytest.raises(BlastuneError, match="must be"):
        blastune.limit(np.float64(1.0))


def _worker_counts(_):
    import blastune as b

    return sorted(b.get_threads().values())


def _worker_counts_around_a_limit(_):
    import blastune as b

    with b.limit(2):
        inside = sorted(b.get_threads().values())
    return inside, sorted(b.get_threads().values())


def test_worker_initializer_starts_afresh_in_workers_forked_inside_a_limit():
    # Issue 11.5: the fork copies the parent's active limit(2) into the worker; the initializer's
    # set_threads(1) only became the base *under* it, so the workers ran 2 threads.
    import multiprocessing

    fork = multiprocessing.get_context("fork")
    with blastune.limit(2):
        with ProcessPoolExecutor(
            2, mp_context=fork, initializer=blastune.worker_initializer(1)
        ) as pool:
            assert list(pool.map(_worker_counts, range(4))) == [[1, 1]] * 4
            # the worker's own limits still nest and unwind to the worker's count
            assert list(pool.map(_worker_counts_around_a_limit, range(2))) == [([2, 2], [1, 1])] * 2
        assert tp_counts() == [2, 2]
    assert tp_counts() == [2, 2]


def test_a_limit_held_by_a_generator_finished_on_another_thread_is_released():
    # Issue 11.6: the exit ran on another thread and raised AttributeError; the limit stayed for ever.
    def gen():
        with blastune.limit(1):
            yield tp_counts()
        yield tp_counts()

    g = gen()
    seen = [next(g)]
    errors = []

    def finish():
        try:
            seen.append(next(g))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=finish)
    t.start()
    t.join()
    assert errors == []
    assert seen == [[1, 1], [2, 2]]
    from blastune.control.limits import _S

    assert _S.stacks == {} and _S.originals == {}
    assert tp_counts() == [2, 2]


def test_a_generator_finished_on_another_thread_leaves_that_threads_own_limit_alone():
    from blastune.control.limits import _S

    def gen():
        with blastune.limit(1):
            yield

    g = gen()
    next(g)
    result = {}

    def other():
        with blastune.limit(1):  # this thread's own limit, same count
            try:
                next(g)
            except StopIteration:
                pass
            result["during"] = tp_counts()
            result["stacks"] = sum(len(s) for s in _S.stacks.values())
        result["after"] = tp_counts()

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert result == {"during": [1, 1], "stacks": 1, "after": [2, 2]}
    assert _S.stacks == {}


def test_a_generator_closed_without_finishing_releases_its_limit():
    def gen():
        with blastune.limit(1):
            yield

    g = gen()
    next(g)
    assert tp_counts() == [1, 1]
    g.close()  # GeneratorExit runs the with-block's exit
    assert tp_counts() == [2, 2]
