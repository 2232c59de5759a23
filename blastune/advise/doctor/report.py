"""``blastune.doctor()``: what is wrong with this environment's BLAS setup, and how to fix it.

The checks live in ``blastune.advise.doctor.checks.CHECKS`` (one small function each). This module gathers
the facts they read into a ``Context`` -- first running the BLAS in a child process, so a setting
that crashes the BLAS (``OPENBLAS_CORETYPE`` naming a kernel the CPU lacks) becomes a finding and
not the death of doctor -- then runs every check and returns plain data.
"""
from __future__ import annotations

import os

from blastune import __version__
from blastune.core.counts import check_threads
from blastune.facts.environment import current_env
from blastune.advise.doctor.checks import CHECKS
from blastune.advise.doctor.model import (DOCTOR_SCHEMA, SEVERITIES, Context, DoctorReport,  # noqa: F401
                                           Finding)
from blastune.advise.doctor.probe import ProbeResult


def _import_is_safe(probe: ProbeResult | None) -> bool:
    """May this process import numpy/scipy and query their libraries, as info() does?"""
    if probe is None or probe.ok or probe.returncode == 1:
        # exit status 1 is a Python exception (numpy missing or broken): info() reports it safely
        return True
    if probe.crashed or probe.timed_out:
        # a kernel that dies or hangs in the product (a bad OPENBLAS_CORETYPE) still answers the
        # queries info() makes; one that dies while being imported would take us with it
        return probe.stage not in ("start", "import numpy", "import scipy")
    # The child ended itself: a library called exit() (oneMKL, status 2, for a MKL_THREADING_LAYER it
    # cannot load) or the loader did (127, an unresolved symbol). MKL loads its layer at the first
    # call -- any query of ours would end this process the same way.
    return False


def build_context(jobs: int = 1, probe: ProbeResult | None = None) -> Context:
    from blastune.facts.cpu import cpu_flags, cpu_info
    from blastune.facts.detect import inventory

    notes = []
    if _import_is_safe(probe):
        from blastune.facts.info import info

        data = info()  # imports numpy and scipy, as a user's script would
        cpu, loaded, binds = data.cpu, data.loaded, data.bindings
    else:
        cpu, loaded, binds = cpu_info(), inventory(), []
        notes.append(f"numpy/scipy not imported here: the probe child died at '{probe.stage}'")
    return Context(jobs=jobs, env=dict(os.environ), cpu=cpu, cpu_flags=cpu_flags(), loaded=loaded,
                   bindings=binds, probe=probe, notes=notes)


def run_checks(ctx: Context, checks=None) -> list[Finding]:
    """Run each check; one that raises is reported as a finding, never takes the others down."""

    findings = []
    for check_id, check in (checks or CHECKS):
        try:
            findings += check(ctx)
        except Exception as exc:  # a bug of ours must not hide the other findings
            findings.append(Finding(check_id, "warning", f"this check failed: {type(exc).__name__}: {exc}",
                                    "report it as a blastune bug (BLASTUNE_DEBUG=1 shows nothing more here)"))
    return findings


def doctor(jobs: int = 1, *, probe: bool = True, timeout: float = 60.0) -> DoctorReport:
    """Check this environment for BLAS oversubscription and misconfiguration.

    ``jobs``: how many copies of the workload will run at once (each with this environment).
    ``probe``: run numpy's BLAS in a child process first (what catches crashing settings).
    """
    from blastune.advise.doctor.probe import run_probe

    import sys

    check_threads(jobs, "job count")
    # an embedding program (uWSGI, a GUI) has no python to start: then there is no probe to run
    result = run_probe(timeout=timeout) if probe and sys.executable else None
    ctx = build_context(jobs, result)
    findings = run_checks(ctx)
    return DoctorReport(
        schema=DOCTOR_SCHEMA, blastune_version=__version__, jobs=jobs,
        usable_cores=ctx.cpu.usable_cores, usable_basis=ctx.cpu.usable_basis, findings=findings,
        probe=result,
        libraries=[{"vendor": lib.vendor, "api": lib.api, "threading_layer": lib.threading_layer,
                    "num_threads": lib.num_threads, "architecture": lib.architecture,
                    "filepath": lib.filepath} for lib in ctx.loaded],
        env={k: v for k, v in current_env(ctx.env).items() if v is not None},
        notes=ctx.notes,
    )
