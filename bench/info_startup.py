"""Start-up cost of ``blastune info --json`` against ``python -c "import numpy, scipy.linalg"``.

The anchor is what a user pays to get numpy's and scipy's BLAS/LAPACK loaded at all; the goal is
``blastune info`` <= 1.3x of it. blastune itself imports numpy and scipy (not scipy.linalg's Python
code, which drags in numpy.f2py, numpy.ma and numpy.testing: it dlopens the two extension modules
it inspects), typer, and its own modules; the extra rows show those parts.
Commands are run interleaved (one of each per round) so a machine shared with other work slows all
of them alike; the table gives median, min and the spread (interquartile range) of the wall times.

    python bench/info_startup.py [--runs 15] [--python PATH]

``--python`` times another interpreter/venv (its ``blastune`` script is taken from the same bin/).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def commands(python: str) -> list[tuple[str, list[str]]]:
    bindir = os.path.dirname(python)
    script = [os.path.join(bindir, "blastune")]
    if not os.path.exists(
        script[0]
    ):  # e.g. a throwaway venv: run PATH's script with this interpreter
        script = [python, shutil.which("blastune") or "blastune"]
    return [
        (
            "anchor: python -c 'import numpy, scipy.linalg'",
            [python, "-c", "import numpy, scipy.linalg"],
        ),
        ("blastune info --json (console script)", [*script, "info", "--json"]),
        ("python -m blastune info --json", [python, "-m", "blastune", "info", "--json"]),
        (
            "python -c 'import blastune; blastune.info()'",
            [python, "-c", "import blastune; blastune.info()"],
        ),
        # blastune loads scipy.linalg's extension modules without running scipy.linalg's Python code
        (
            "python -c 'import numpy, scipy' (what info imports)",
            [python, "-c", "import numpy, scipy"],
        ),
        # typer >= 0.29 builds a pydantic TypeAdapter per CLI parameter
        (
            "python -c 'import typer._adapters' (typer+pydantic)",
            [
                python,
                "-c",
                "import typer, importlib.util as u; u.find_spec('typer._adapters') and "
                "__import__('typer._adapters')",
            ],
        ),
        (
            "python -c 'import blastune.cli' (CLI import only)",
            [python, "-c", "import blastune.cli"],
        ),
        ("python -c pass (interpreter start)", [python, "-c", "pass"]),
    ]


def run_once(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15, help="timed runs per command (default 15)")
    ap.add_argument(
        "--python", default=sys.executable, help="interpreter to time (default: this one)"
    )
    args = ap.parse_args()
    if args.runs < 3:
        ap.error("--runs must be >= 3")
    # One BLAS thread each: start-up, not BLAS thread creation, is measured, and the machine is shared.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    cmds = commands(args.python)
    for _, argv in cmds:  # warm-up: page cache, .pyc files
        run_once(argv, env)
    times: dict[str, list[float]] = {name: [] for name, _ in cmds}
    for _ in range(args.runs):
        for name, argv in cmds:
            times[name].append(run_once(argv, env))

    anchor = statistics.median(times[cmds[0][0]])
    rows = []
    for name, _ in cmds:
        ts = sorted(times[name])
        q = statistics.quantiles(ts, n=4)
        med = statistics.median(ts)
        rows.append(
            [
                name,
                f"{med * 1000:.0f}",
                f"{ts[0] * 1000:.0f}",
                f"{(q[2] - q[0]) * 1000:.0f}",
                f"{med / anchor:.2f}x",
            ]
        )
    from tabulate import tabulate

    print(
        f"{args.runs} interleaved runs each; python {args.python}; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        tabulate(
            rows,
            headers=["command", "median ms", "min ms", "IQR ms", "vs anchor"],
            disable_numparse=True,
        )
    )
    ratio = statistics.median(times[cmds[1][0]]) / anchor
    verdict = "meets" if ratio <= 1.3 else "misses"
    print(
        f"\nblastune info --json / import numpy, scipy.linalg = {ratio:.2f}x (goal <= 1.30x: {verdict} it)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
