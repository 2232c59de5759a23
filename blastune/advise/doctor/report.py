"""``blastune.doctor()``: what is wrong with this environment's BLAS setup, and how to fix it.

This module gathers the facts the checks (``registry``) read into a ``Context`` -- first running
the BLAS in a child process, so a setting that crashes the BLAS (``OPENBLAS_CORETYPE`` naming a
kernel the CPU lacks) becomes a finding and not the death of doctor -- then runs every check and
returns plain data.
"""

from __future__ import annotations

import os
import sys
import time

from blastune import __version__
from blastune.core.counts import check_threads
from blastune.facts.environment import current_env

# importing the check modules registers their checks (general ones first, then big-machine ones)
from blastune.advise.doctor import checks as _checks, topology_checks  # noqa: F401
from blastune.advise.doctor.model import Context
from blastune.advise.doctor.registry import all_checks
from blastune.documents.doctor import DoctorReport, Finding
from blastune.advise.doctor.probe import ProbeResult, run_probe
from blastune.facts.schedstat import Pressure, cpu_pressure


def _import_is_safe(probe: ProbeResult | None) -> bool:
    """May this process import numpy/scipy and query their libraries, as info() does?"""
    if probe is None or probe.ok or probe.returncode == 1:
        # exit status 1 is a Python exception (numpy missing or broken): info() reports it safely
        return True
    if probe.crashed or probe.timed_out:
        # a kernel that dies or hangs in the product (a bad OPENBLAS_CORETYPE) still answers the
        # queries info() makes; one that dies while being imported would take us with it
        return probe.stage not in ("start", "import numpy", "import scipy")
    # The child ended itself: a library called exit() (oneMKL, status 2, for a MKL_THREADING_LAYER
    # it cannot load) or the loader did (127, an unresolved symbol). MKL loads its layer at the
    # first call -- any query of ours would end this process the same way.
    return False


def _pressure_since(start) -> tuple[Pressure | None, float | None, float | None]:
    """CPU pressure now, and PSI "some" in percent since ``start`` = (monotonic time, Pressure)."""
    now = cpu_pressure()
    if now is None or start is None or start[1] is None:
        return now, None, None
    window = time.monotonic() - start[0]
    if window < MIN_PRESSURE_WINDOW_S:
        return now, None, None  # too short to say anything the 10 s average does not
    pct = 100.0 * (now.some_total_us - start[1].some_total_us) / 1e6 / window
    return now, round(min(100.0, max(0.0, pct)), 1), round(window, 2)


# Shorter than this, a window's PSI delta is a few scheduler ticks: the 10 s average says more.
MIN_PRESSURE_WINDOW_S = 0.2


def build_context(jobs: int = 1, probe: ProbeResult | None = None, pressure_start=None) -> Context:
    """The facts every check reads. ``pressure_start``: (monotonic time, Pressure) when doctor
    began."""
    from blastune.facts.cpu import cpu_flags, cpu_info
    from blastune.facts.detect import inventory
    from blastune.facts.topology import topology_or_none

    notes = []
    if _import_is_safe(probe):
        from blastune.facts.info import info

        data = info()  # imports numpy and scipy, as a user's script would
        cpu, loaded, binds, topo = data.cpu, data.loaded, data.bindings, data.topology
    else:
        cpu, loaded, binds, topo = cpu_info(), inventory(), [], topology_or_none()
        notes.append(f"numpy/scipy not imported here: the probe child died at '{probe.stage}'")
    pressure, now_pct, window = _pressure_since(pressure_start)
    return Context(
        jobs=jobs,
        env=dict(os.environ),
        cpu=cpu,
        cpu_flags=cpu_flags(),
        loaded=loaded,
        bindings=binds,
        probe=probe,
        notes=notes,
        pressure=pressure,
        pressure_now_pct=now_pct,
        pressure_window_s=window,
        topology=topo,
    )


def run_checks(ctx: Context, checks=None) -> list[Finding]:
    """Run each check; one that raises is reported as a finding, never takes the others down."""

    findings = []
    for check_id, check in checks or all_checks():
        try:
            findings += check(ctx)
        except Exception as exc:  # a bug of ours must not hide the other findings
            findings.append(
                Finding(
                    "warning",
                    f"this check failed: {type(exc).__name__}: {exc}",
                    "report it as a blastune bug (BLASTUNE_DEBUG=1 shows nothing more here)",
                    check_id,
                )
            )
    return findings


# what the report says of each loaded library
_LIBRARY_KEYS = ("vendor", "api", "threading_layer", "num_threads", "architecture", "filepath")


def doctor(jobs: int = 1, *, probe: bool = True, timeout: float = 60.0) -> DoctorReport:
    """Check this environment for BLAS oversubscription and misconfiguration.

    ``jobs``: how many copies of the workload will run at once (each with this environment).
    ``probe``: run numpy's BLAS in a child process first (what catches crashing settings).
    """
    check_threads(jobs, "job count")
    start = (time.monotonic(), cpu_pressure())
    # an embedding program (uWSGI, a GUI) has no python to start: then there is no probe to run
    result = run_probe(timeout=timeout) if probe and sys.executable else None
    ctx = build_context(jobs, result, start)
    findings = run_checks(ctx)
    return DoctorReport(
        blastune_version=__version__,
        jobs=jobs,
        usable_cores=ctx.usable_cores,
        usable_basis=ctx.usable_basis,
        findings=findings,
        probe=result.to_dict() if result else None,
        libraries=[{k: getattr(lib, k) for k in _LIBRARY_KEYS} for lib in ctx.loaded],
        env={k: v for k, v in current_env(ctx.env).items() if v is not None},
        notes=ctx.notes,
    )
