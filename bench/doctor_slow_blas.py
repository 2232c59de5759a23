"""The figures behind doctor's `slow-blas` finding: dot 2000x2000 at one thread, per build.

Runs the same float64 product under reference BLAS, ATLAS and OpenBLAS of the vendor matrix, one
thread each, best of 3, and prints GFLOP/s and how many times slower each is than OpenBLAS measured
in the same run (the anchor). Compare with blastune.advise.doctor.checks.MEASURED_GFLOPS. Absolute numbers
move with machine load; the ratios much less.

    python bench/doctor_slow_blas.py           # needs /tmp/blasmatrix (../shared/blas-matrix/setup.sh)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from blastune.advise.doctor.checks import MEASURED_GFLOPS  # noqa: E402

WITH_BLAS = "/tmp/blasmatrix/with-blas"
PYTHON = "/tmp/blasmatrix/venv/bin/python"
N = 2000
CHILD = f"""
import json, time
import numpy as np
n = {N}
a, b = np.random.rand(n, n), np.random.rand(n, n)
times = []
for _ in range(3):
    t0 = time.perf_counter(); a @ b; times.append(time.perf_counter() - t0)
print(json.dumps({{"gflops": 2 * n**3 / min(times) / 1e9}}))
"""
VARIANTS = {"openblas-pthread": "openblas", "atlas": "atlas", "reference": "reference"}


def main() -> int:
    if not os.path.exists(WITH_BLAS):
        print(f"skipped: {WITH_BLAS} missing (run ../shared/blas-matrix/setup.sh as root)")
        return 0
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    rates = {}
    for variant in VARIANTS:
        out = subprocess.run(
            [WITH_BLAS, variant, PYTHON, "-c", CHILD],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if out.returncode != 0:
            print(f"{variant}: failed: {out.stderr.strip()[-200:]}")
            return 1
        rates[variant] = json.loads(out.stdout)["gflops"]
    anchor = rates["openblas-pthread"]
    print(f"dot {N}x{N} float64, 1 thread, best of 3 (GFLOP/s)")
    print(f"{'build':<18}{'measured':>10}{'x slower':>10}{'doctor says':>13}{'x slower':>10}")
    for variant, vendor in VARIANTS.items():
        said = MEASURED_GFLOPS[vendor]
        print(
            f"{variant:<18}{rates[variant]:>10.1f}{anchor / rates[variant]:>10.1f}"
            f"{said:>13.1f}{MEASURED_GFLOPS['openblas'] / said:>10.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
