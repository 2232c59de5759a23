"""Call into the BLAS in a child process, so a setting that kills the BLAS cannot kill us.

A bad ``OPENBLAS_CORETYPE`` lets ``import numpy`` succeed and then dies with SIGILL at the first
matrix product. The child prints each stage before it enters it, so the last line it printed says
where it died; the parent turns that, and the exit status or signal, into plain data.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

PROBE_SIZE = 200

# The child prints "stage <name>" before each stage it enters: import numpy, import scipy, matmul,
# check, done ("start" when it printed nothing).
_CHILD = f"""
import sys
def stage(s):
    print("stage", s, flush=True)
stage("import numpy")
import numpy as np
stage("import scipy")
try:
    import scipy.linalg  # loads scipy's own BLAS/LAPACK copy
except ImportError:
    pass
stage("matmul")
n = {PROBE_SIZE}
a = np.arange(n * n, dtype=np.float64).reshape(n, n) % 7 - 3.0
b = a @ a
stage("check")
# a few entries by plain Python sums: a wrong kernel can return garbage without crashing
rows = a.tolist()
bad = 0
for j in range(4):
    want = sum(rows[0][k] * rows[k][j] for k in range(n))
    if abs(float(b[0, j]) - want) > 1e-9 * max(1.0, abs(want)):
        bad += 1
print("wrong", bad, flush=True)
stage("done")
"""


@dataclass
class ProbeResult:
    ok: bool
    stage: str  # the last stage the child entered
    returncode: int | None  # None on timeout
    signal: str | None  # e.g. "SIGILL" when the child was killed by a signal
    wrong_entries: int  # entries of the product that differ from a plain-Python sum
    seconds: float
    stderr_tail: str
    timed_out: bool = False

    def to_dict(self):
        return asdict(self)

    @property
    def crashed(self) -> bool:
        return self.signal is not None

    @property
    def signal_number(self) -> int | None:
        return _signal_number(self.returncode)


def _signal_number(rc: int | None) -> int | None:
    """A negative status is a signal (direct child); 128+N is one reported through a shell."""
    if rc is None or rc == 0:
        return None
    return -rc if rc < 0 else rc - 128 if 128 < rc < 128 + 65 else None


def _signal_of(rc: int | None) -> str | None:
    num = _signal_number(rc)
    if num is None:
        return None
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def run_probe(python: str | None = None, timeout: float = 60.0) -> ProbeResult:
    """Import numpy and scipy and multiply two 200x200 matrices in a child with this environment."""
    cmd = [python or sys.executable, "-c", _CHILD]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        out, err, rc, timed_out = proc.stdout, proc.stderr, proc.returncode, False
    except subprocess.TimeoutExpired as exc:  # its output is bytes (or None), text=True or not
        out, err = (x.decode(errors="replace") if x else "" for x in (exc.stdout, exc.stderr))
        rc, timed_out = None, True
    seconds = time.perf_counter() - t0
    stage, wrong = "start", 0
    for line in out.splitlines():
        if line.startswith("stage "):
            stage = line[6:].strip()
        elif line.startswith("wrong "):
            wrong = int(line.split()[1])
    # some libraries write their last words to stdout (oneMKL's "FATAL ERROR"), between our stage
    # lines
    said = err.strip().splitlines() or [
        line
        for line in out.splitlines()
        if line.strip() and not line.startswith(("stage ", "wrong "))
    ]
    tail = " | ".join(said[-3:])
    return ProbeResult(
        ok=(rc == 0 and stage == "done" and wrong == 0),
        stage=stage,
        returncode=rc,
        signal=_signal_of(rc),
        wrong_entries=wrong,
        seconds=round(seconds, 3),
        stderr_tail=tail[-500:],
        timed_out=timed_out,
    )
