"""limit() against the real BLAS builds of ../shared/blas-matrix (Debian numpy 1.24 / scipy 1.10)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import child_env, needs_matrix, run_python

pytestmark = [pytest.mark.matrix, needs_matrix]

PROBE = r"""
import json, sys, warnings, threading
import numpy, scipy.linalg, threadpoolctl, blastune
from blastune.errors import NotControllableError
n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
out = {"before": sorted(blastune.get_threads().values())}
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    with blastune.limit(n):
        out["inside"] = sorted(blastune.get_threads().values())
        out["tp_inside"] = sorted(d["num_threads"] for d in threadpoolctl.threadpool_info()
                                  if d["user_api"] == "blas" and d["internal_api"] in ("openblas", "mkl"))
    out["warnings"] = [str(x.message) for x in w if issubclass(x.category, blastune.NotControllableWarning)]
out["after"] = sorted(blastune.get_threads().values())
try:
    with blastune.limit(n, strict=True):
        pass
    out["strict"] = None
except NotControllableError as e:
    out["strict"] = str(e)
print(json.dumps(out))
"""


def probe(variant, n=1, **env):
    code = PROBE.replace("sys.argv[1]) if len(sys.argv) > 1 else 1", f"{n})")
    r = run_python(code, variant, env=child_env(env, threads=None))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("variant", ["openblas-pthread", "mkl"])
def test_runtime_controllable_builds_take_the_limit_and_restore(variant):
    out = probe(variant, 1)
    assert out["before"] == [2]
    assert out["inside"] == [1] and out["tp_inside"] == [1]
    assert out["after"] == [2]
    assert out["warnings"] == [] and out["strict"] is None


def test_openmp_openblas_is_limited_in_the_calling_thread():
    code = r"""
import json, threading, numpy, blastune
res = {}
with blastune.limit(1):
    res["main"] = sorted(blastune.get_threads().values())
    t = threading.Thread(target=lambda: res.__setitem__("other", sorted(blastune.get_threads().values())))
    t.start(); t.join()
res["after"] = sorted(blastune.get_threads().values())
print(json.dumps(res))
"""
    r = run_python(code, "openblas-openmp", env=child_env(threads=None))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # OpenMP keeps the count per thread: the limit holds where it was entered, not elsewhere
    assert out["main"] == [1]
    assert out["other"] == [2]
    assert out["after"] == [2]


def test_blis_with_env_threads_warns_naming_the_variable_and_strict_raises():
    out = probe("blis-pthread", 1, BLIS_NUM_THREADS="2")
    assert out["inside"] == []  # nothing at run time to change
    assert len(out["warnings"]) == 1
    assert (
        "BLIS_NUM_THREADS=1" in out["warnings"][0]
        and "before the process starts" in out["warnings"][0]
    )
    assert out["strict"] and "BLIS_NUM_THREADS" in out["strict"]


@pytest.mark.parametrize("variant", ["atlas", "reference"])
def test_fixed_builds_warn_on_set_threads_and_obey_a_cap_of_one(variant):
    code = r"""
import json, warnings, numpy, scipy.linalg, blastune
out = {}
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    with blastune.limit(1):          # serial build: already at 1, nothing to warn about
        pass
    out["limit1"] = len(w)
    blastune.set_threads(2)          # cannot happen: say so, and say why
    out["set2"] = [str(x.message) for x in w]
try:
    blastune.set_threads(2, strict=True)
    out["strict"] = None
except blastune.NotControllableError as e:
    out["strict"] = str(e)
print(json.dumps(out))
"""
    r = run_python(code, variant, env=child_env(threads=None))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["limit1"] == 0
    assert out["set2"] and all("fixed when it was built" in m for m in out["set2"])
    assert any(m.startswith(variant) for m in out["set2"])
    assert out["strict"] and "fixed when it was built" in out["strict"]


def test_openmp_per_thread_counts_survive_tasks_leaving_out_of_order():
    # OpenMP keeps the count per thread. Saved-and-restored per entry, task A's exit put back the
    # count B's entry had replaced, and B's exit left the thread at A's 1 for ever.
    code = r"""
import asyncio, json, numpy, blastune
log = []
async def a(a_in, b_in):
    with blastune.limit(1):
        a_in.set(); await b_in.wait()
        log.append(sorted(blastune.get_threads().values()))
async def b(a_in, b_in):
    await a_in.wait()
    with blastune.limit(2):
        b_in.set()
        await asyncio.sleep(0.01)
        log.append(sorted(blastune.get_threads().values()))
async def main():
    a_in, b_in = asyncio.Event(), asyncio.Event()
    await asyncio.gather(a(a_in, b_in), b(a_in, b_in))
blastune.set_threads(3)
asyncio.run(main())
log.append(sorted(blastune.get_threads().values()))
print(json.dumps(log))
"""
    r = run_python(code, "openblas-openmp", env=child_env(threads=None))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [[1], [2], [3]]
