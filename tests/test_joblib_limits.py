"""joblib's loky workers: ``blastune.limit`` inside the task and joblib's own
``parallel_config(inner_max_num_threads=n)`` give the task the same BLAS thread count.

Both are read inside the worker by threadpoolctl. loky's default (no setting) is
cpu_count() // n_jobs, i.e. 1 here with 2 jobs on 2 cores, so n=2 shows both really change it.
"""

from __future__ import annotations

import pytest

joblib = pytest.importorskip("joblib")

from blastune.facts.cpu import cpu_info  # noqa: E402


def _tasks():
    # defined inside a function so cloudpickle ships them by value to the loky workers
    def blas_threads():
        import numpy  # noqa: F401
        import threadpoolctl

        return sorted(
            {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}
        )

    def under_blastune_limit(n):
        import blastune

        with blastune.limit(n):
            inside = blas_threads()
        return inside, blas_threads()  # and after the block: the worker's own count again

    return blas_threads, under_blastune_limit


@pytest.mark.skipif(
    cpu_info().usable_cores < 2, reason="needs 2 cores to tell 2 threads from loky's default"
)
@pytest.mark.parametrize("n", [1, 2])
def test_blastune_limit_and_inner_max_num_threads_agree(n):
    from joblib import Parallel, delayed, parallel_config

    blas_threads, under_blastune_limit = _tasks()
    with parallel_config(backend="loky", n_jobs=2):
        default = Parallel()(delayed(blas_threads)() for _ in range(2))
        ours = Parallel()(delayed(under_blastune_limit)(n) for _ in range(2))
    with parallel_config(backend="loky", n_jobs=2, inner_max_num_threads=n):
        theirs = Parallel()(delayed(blas_threads)() for _ in range(2))
    loky_default = [max(1, cpu_info().usable_cores // 2)]
    assert default == [loky_default] * 2
    assert [inside for inside, _ in ours] == theirs == [[n], [n]]
    assert [after for _, after in ours] == [
        loky_default
    ] * 2  # blastune.limit is scoped to the block


# The package module must pickle by reference: cloudpickle (joblib's loky, Dask) ships a function
# defined in a script by value, together with the modules it names -- here the global ``blastune``.
SCRIPT_USING_GLOBAL_BLASTUNE = """
import blastune
from joblib import Parallel, delayed


def task(i):
    with blastune.limit(1):
        return sorted(set(blastune.get_threads().values()))


if __name__ == "__main__":
    print(Parallel(n_jobs=2, backend="loky")(delayed(task)(i) for i in range(2)))
"""


def test_a_script_using_blastune_limit_runs_in_loky_workers(tmp_path):
    import subprocess
    import sys

    from conftest import child_env

    script = tmp_path / "fit.py"
    script.write_text(SCRIPT_USING_GLOBAL_BLASTUNE)
    res = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=child_env(),
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "[[1], [1]]"
