"""The Dask worker plugin against a real LocalCluster of worker processes.

The nanny normally exports OPENBLAS/OMP/MKL_NUM_THREADS=1 to the workers it spawns, which would
hide whether the plugin did anything. The first test switches that off, so a worker starts at the
library's default (one thread per core) and only the plugin can bring it down; the second keeps the
nanny's 1 and asks for 2, so only the plugin can bring it up. Two cluster starts, ~1 s each.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest

distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

from blastune.facts.cpu import cpu_info  # noqa: E402
from blastune.facts.environment import THREAD_VARS  # noqa: E402
from conftest import child_env  # noqa: E402

CORES = cpu_info().usable_cores
needs_two_cores = pytest.mark.skipif(
    CORES < 2, reason="a 1-core machine cannot tell a cap of 1 from the default"
)


def _blas_threads_main():
    """In the worker's main thread (client.run): blastune's view of every run-time-controllable BLAS."""
    import numpy  # noqa: F401  -- make sure the BLAS is loaded

    import blastune

    return sorted(set(blastune.get_threads().values()))


def _blas_threads_task():
    """In a task thread -- where user code runs -- read by threadpoolctl, independent of blastune."""
    import numpy  # noqa: F401
    import threadpoolctl

    return sorted(
        {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}
    )


def _setenv(name, value):
    os.environ[name] = value


def _in_each_task_thread(client):
    """Run _blas_threads_task on every worker, pinned to it."""
    futures = {
        a: client.submit(_blas_threads_task, workers=[a], allow_other_workers=False, pure=False)
        for a in client.scheduler_info()["workers"]
    }
    return {a: f.result(timeout=60) for a, f in futures.items()}


@contextlib.contextmanager
def _cluster(monkeypatch, pre_spawn):
    # the workers inherit our environment: start them with no thread variables at all
    for var in THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    # kept for the whole test: a nanny reads it when it is created, also those cluster.scale() adds
    with dask.config.set({"distributed.nanny.pre-spawn-environ": pre_spawn}):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=40,
        )
        try:
            with distributed.Client(cluster) as client:
                yield cluster, client
        finally:
            cluster.close()


@needs_two_cores
def test_plugin_caps_every_worker_including_later_ones_and_restores(monkeypatch):
    from blastune.integrations.dask import limit_workers, worker_summary

    # the nanny sets nothing: the library default stands
    with _cluster(monkeypatch, pre_spawn={}) as (cluster, client):
        baseline = client.run(_blas_threads_main)
        assert all(v == [CORES] for v in baseline.values()), baseline  # uncapped: one per core

        summary = limit_workers(client)  # threads=None: the worker's share
        share = max(1, CORES // 2)  # 2 workers x 1 task thread on this host
        assert share < CORES
        for w in summary.workers:
            assert w.limit["threads"] == share and w.limit["host_task_threads"] == 2
            assert w.limit["env_changed"]["OPENBLAS_NUM_THREADS"] == [None, str(share)]
            assert set(map(tuple, w.limit["threads_changed"].values())) == {(CORES, share)}
            assert {lib["threads"] for lib in w.libraries if lib["vendor"] == "openblas"} == {share}
        assert all(v == [share] for v in client.run(_blas_threads_main).values())
        assert all(v == [share] for v in _in_each_task_thread(client).values())

        cluster.scale(3)  # a worker that joins after the plugin was registered
        client.wait_for_workers(3, timeout=60)
        new = set(client.scheduler_info()["workers"]) - set(baseline)
        assert len(new) == 1
        (addr,) = new
        rec = {w.address: w for w in worker_summary(client).workers}[addr].limit
        assert rec is not None, "the late worker did not run the plugin"
        assert rec["host_task_threads"] == 3 and rec["threads"] == max(1, CORES // 3)
        assert rec["env_changed"]["OPENBLAS_NUM_THREADS"] == [None, str(rec["threads"])]
        if rec["threads_changed"]:  # numpy was already loaded there: capped at run time
            assert set(map(tuple, rec["threads_changed"].values())) == {(CORES, rec["threads"])}
        else:  # not loaded yet: the environment caps it when a task imports numpy
            assert any("no BLAS/OpenMP library loaded yet" in n for n in rec["notes"])
        # without the plugin this worker would run CORES threads, like the others did above
        assert _in_each_task_thread(client)[addr] == [rec["threads"]]

        # someone changes one variable after the plugin did: teardown must leave theirs alone
        client.run(_setenv, "MKL_NUM_THREADS", "7")
        # teardown gives back exactly what it took: the default count, no variables left behind
        client.unregister_worker_plugin("blastune")
        assert all(v == [CORES] for v in client.run(_blas_threads_main).values())
        left = client.run(lambda: {v: os.environ.get(v) for v in THREAD_VARS})
        for env in left.values():
            assert env.pop("MKL_NUM_THREADS") == "7"
            assert set(env.values()) == {None}, left


@needs_two_cores
def test_plugin_overrides_the_nannys_starving_default_and_says_so(monkeypatch):
    from blastune.integrations.dask import limit_workers

    nanny_default = {
        "OMP_NUM_THREADS": 1,
        "MKL_NUM_THREADS": 1,
        "OPENBLAS_NUM_THREADS": 1,
    }  # as shipped
    with _cluster(monkeypatch, pre_spawn=nanny_default) as (cluster, client):
        assert all(v == [1] for v in client.run(_blas_threads_main).values())  # the nanny's 1
        summary = limit_workers(client, threads=2)
        for w in summary.workers:
            assert w.limit["basis"] == "explicit threads=2"
            assert w.limit["env_changed"]["OPENBLAS_NUM_THREADS"] == ["1", "2"]
            assert w.limit["env_changed"]["BLIS_NUM_THREADS"] == [None, "2"]
            assert "OMP_NUM_THREADS" in w.limit["env_changed"]
            assert any(
                "oversubscribed" in n for n in w.limit["notes"]
            )  # 2 x 2 > 2 cores, said aloud
        assert all(v == [2] for v in _in_each_task_thread(client).values())
        text = str(summary)
        assert (
            "1->2" in text
        )  # the table says what changed, how the cap was chosen, and the warning
        assert "cap: explicit threads=2 (all workers)" in text
        assert "oversubscribed (all workers)" in text


@needs_two_cores
def test_workers_sharing_one_process_keep_the_cap_until_the_last_leaves(monkeypatch):
    """No nanny, processes=False: the workers are threads of *this* process, sharing its environment
    and BLAS pool. The first worker's setup changes them; when that worker leaves first, the cap must
    stay for the other, and only the last one out puts back this process's own settings."""
    import blastune
    from blastune.integrations.dask import limit_workers, worker_summary

    for var in THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    own = blastune.get_threads()
    cap = 1 if set(own.values()) != {1} else 2  # a count this process is not running now
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None, silence_logs=40
    )
    try:
        with distributed.Client(cluster) as client:
            summary = limit_workers(client, threads=cap)
            assert {w.pid for w in summary.workers} == {os.getpid()}
            changer = [w.address for w in summary.workers if w.limit["env_changed"]]
            assert len(changer) == 1, summary  # one environment: only the first setup changes it
            assert set(blastune.get_threads().values()) == {cap}  # our own process is capped too

            leaving = next(w for w in cluster.workers.values() if w.address == changer[0])
            client.sync(leaving.close)
            (rest,) = worker_summary(client).workers
            assert any("took over" in n for n in rest.limit["notes"]), rest.limit
            assert os.environ["OPENBLAS_NUM_THREADS"] == str(cap)
            assert set(blastune.get_threads().values()) == {cap}, (
                "the cap left with the first worker"
            )
    finally:
        cluster.close()
    # the last worker out put back what this process had before the cluster started
    assert blastune.get_threads() == own
    assert {v: os.environ.get(v) for v in THREAD_VARS} == dict.fromkeys(THREAD_VARS)


@needs_two_cores
def test_a_worker_started_without_a_nanny_is_capped(monkeypatch):
    """`dask worker --no-nanny`: no pre-spawn-environ, so its BLAS starts at one thread per core."""
    from blastune.integrations.dask import limit_workers

    for var in THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    env = child_env(threads=None)  # this module importable there: its functions run in the worker
    env["PYTHONPATH"] = os.path.dirname(os.path.abspath(__file__)) + os.pathsep + env["PYTHONPATH"]
    with distributed.LocalCluster(
        n_workers=0, processes=True, dashboard_address=None, silence_logs=40
    ) as cluster:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                cluster.scheduler_address,
                "--no-nanny",
                "--nthreads",
                "1",
                "--no-dashboard",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            with distributed.Client(cluster) as client:
                client.wait_for_workers(1, timeout=60)
                assert list(client.run(_blas_threads_main).values()) == [
                    [CORES]
                ]  # nobody capped it
                (w,) = limit_workers(client).workers
                assert (
                    w.limit["threads"] == CORES and w.limit["host_task_threads"] == 1
                )  # 1 task thread: all cores
                (w,) = limit_workers(client, threads=1).workers
                assert set(map(tuple, w.limit["threads_changed"].values())) == {(CORES, 1)}
                # re-registering tore the first plan down (back to unset) before applying this one
                assert w.limit["env_changed"]["OPENBLAS_NUM_THREADS"] == [None, "1"]
                assert list(_in_each_task_thread(client).values()) == [[1]]
        finally:
            worker.terminate()
            worker.wait(30)


def test_workers_without_blastune_get_one_clear_error(tmp_path):
    """Workers in another environment (a conda env on the cluster, say) cannot unpickle the plugin."""
    from blastune.errors import BlastuneError
    from blastune.integrations.dask import limit_workers

    shadow = tmp_path / "blastune"
    shadow.mkdir()  # makes `import blastune` fail in the worker as if it were not installed there
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'blastune'\", name='blastune')\n"
    )
    env = child_env()
    env["PYTHONPATH"] = str(tmp_path)
    with distributed.LocalCluster(
        n_workers=0, processes=True, dashboard_address=None, silence_logs=50
    ) as cluster:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                cluster.scheduler_address,
                "--no-nanny",
                "--nthreads",
                "1",
                "--no-dashboard",
            ],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            with distributed.Client(cluster) as client:
                client.wait_for_workers(1, timeout=60)
                with pytest.raises(
                    BlastuneError, match="^blastune is not installed where the Dask workers run"
                ):
                    limit_workers(client)
        finally:
            worker.terminate()
            worker.wait(30)


def test_asynchronous_client(monkeypatch):
    """``await limit_workers(client)`` with Client(asynchronous=True); in-process workers keep it quick."""
    import asyncio

    from blastune.integrations.dask import limit_workers, worker_summary

    for var in THREAD_VARS:
        monkeypatch.delenv(var, raising=False)

    async def main():
        async with distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=False,
            asynchronous=True,
            dashboard_address=None,
            silence_logs=40,
        ) as cluster:
            async with distributed.Client(cluster, asynchronous=True) as client:
                summary = await limit_workers(client, threads=1)
                again = await worker_summary(client)
                return summary, again

    summary, again = asyncio.run(main())
    assert [w.limit["threads"] for w in summary.workers] == [1]
    assert [w.limit["basis"] for w in again.workers] == ["explicit threads=1"]
    assert {v: os.environ.get(v) for v in THREAD_VARS} == dict.fromkeys(
        THREAD_VARS
    )  # restored on close


def test_summary_of_no_workers_says_so():
    from blastune.integrations.dask import ClusterSummary

    assert str(ClusterSummary([])) == "no workers yet: the plugin runs on each worker as it joins"


@pytest.mark.parametrize(
    "block, why",
    [
        (
            "sys.modules['distributed'] = None",
            "(distributed is not installed)",
        ),  # the extra is missing
        ("sys.modules['dask'] = None", "(dask is not installed)"),
    ],
)
def test_missing_distributed_is_one_clear_error(block, why):
    code = (
        f"import sys; {block}\n"
        "from blastune.errors import BlastuneError\n"
        "try:\n    from blastune.integrations.dask import limit_workers\n"
        "except BlastuneError as e:\n    print(isinstance(e, ImportError), e, sep='|')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=60
    )
    assert out.returncode == 0, out.stderr
    # one line, saying what is missing and how to install it; still an ImportError for try/except code
    assert out.stdout == (
        "True|blastune.integrations.dask needs dask.distributed "
        + why
        + ": pip install 'blastune[dask]'\n"
    )


def test_a_broken_distributed_is_not_called_missing(tmp_path):
    fake = tmp_path / "distributed"
    fake.mkdir()
    (fake / "__init__.py").write_text("from dask import no_such_name\n")  # a version mismatch, say
    code = (
        "from blastune.integrations import MissingExtraError\n"
        "try:\n    import blastune.integrations.dask\n"
        "except MissingExtraError as e:\n    print(e)\n"
    )
    env = child_env({"PYTHONPATH": f"{tmp_path}{os.pathsep}{child_env()['PYTHONPATH']}"})
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "importing it failed: cannot import name 'no_such_name' from 'dask'" in out.stdout
    assert "not installed" not in out.stdout and len(out.stdout.splitlines()) == 1


def test_explicit_threads_are_checked():
    from blastune.errors import BlastuneError
    from blastune.integrations.dask import BlasThreadsPlugin

    with pytest.raises(BlastuneError, match="whole number from 1 to"):
        BlasThreadsPlugin(0)


@pytest.mark.parametrize("api", ["bogus", ["blas"], None])
def test_a_bad_api_is_refused_in_the_client_before_any_worker_sees_it(api):
    # was: the plugin registered, then every worker logged a traceback from set_threads(api="bogus")
    from blastune.errors import BlastuneError
    from blastune.integrations.dask import BlasThreadsPlugin, limit_workers

    with pytest.raises(BlastuneError, match="unknown api .*: choose blas, openmp or all"):
        BlasThreadsPlugin(2, api=api)

    class NoClient:  # limit_workers must fail before it talks to the cluster at all
        def __getattr__(self, name):
            raise AssertionError(f"the client was used: {name}")

    with pytest.raises(BlastuneError, match="unknown api"):
        limit_workers(NoClient(), api=api)
