"""Which environment variables does Debian's BLIS 0.9 really obey?  (evidence for blastune/libraries/blis.py)

Debian's BLIS hides its bli_* thread API, so blastune can only read the environment the way BLIS does.
This script checks that reading against the library itself: under each BLIS variant of the vendor
matrix and each setting it runs a 1500x1500 matmul and counts the threads the process really has
while the call runs (a sampler thread polls /proc/self/task; the GIL is released during the BLAS
call). The thread count does not depend on how loaded the machine is; the GFLOP/s column does.

    python bench/blis_env_threads.py            # needs /tmp/blasmatrix (../shared/blas-matrix/setup.sh)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

WITH_BLAS = "/tmp/blasmatrix/with-blas"
PYTHON = "/tmp/blasmatrix/venv/bin/python"
SETTINGS = [
    {},
    {"BLIS_NUM_THREADS": "2"},
    {"OMP_NUM_THREADS": "2"},
    {"BLIS_NUM_THREADS": "1", "OMP_NUM_THREADS": "2"},
    {"BLIS_JC_NT": "2"},
]
CHILD = r"""
import json, os, threading, time
import numpy as np
n = 1500
a, b = np.random.rand(n, n), np.random.rand(n, n)
base = len(os.listdir('/proc/self/task'))
peak, stop = [0], threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], len(os.listdir('/proc/self/task')))
        time.sleep(0.0005)
a @ b  # warm-up: OpenMP pools start here
t = threading.Thread(target=sample); t.start()
times = []
for _ in range(3):
    t0 = time.perf_counter(); a @ b; times.append(time.perf_counter() - t0)
stop.set(); t.join()
# Both BLIS builds keep the calling thread as worker 0 and add n-1 threads; the sampler is one more.
# So the threads computing = peak - base - 1 (sampler) + 1 (caller).
print(json.dumps({"threads": peak[0] - base, "gflops": 2 * n**3 / min(times) / 1e9}))
"""


def main() -> int:
    if not os.path.exists(WITH_BLAS):
        print(f"skipped: {WITH_BLAS} missing (run ../shared/blas-matrix/setup.sh as root)")
        return 0
    rows = []
    for variant in ("blis-pthread", "blis-openmp"):
        for setting in SETTINGS:
            env = {
                k: v
                for k, v in os.environ.items()
                if k not in ("BLIS_NUM_THREADS", "OMP_NUM_THREADS", "BLIS_JC_NT", "BLIS_IC_NT")
            }
            env.update(setting)
            out = subprocess.run(
                [WITH_BLAS, variant, PYTHON, "-c", CHILD],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(out)
            rows.append(
                (
                    variant,
                    " ".join(f"{k}={v}" for k, v in setting.items()) or "(nothing set)",
                    r["threads"],
                    f"{r['gflops']:.1f}",
                )
            )
    from tabulate import tabulate

    print(
        tabulate(
            rows, headers=["variant", "environment", "threads computing", "GFLOP/s (best of 3)"]
        )
    )
    print(
        "\nthreads computing = threads seen during the call, minus the sampler, including the caller"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
