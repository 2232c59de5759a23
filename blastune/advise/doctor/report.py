"""``blastune.doctor()``: what is wrong with this environment's BLAS setup, and how to fix it.

The checks live in ``blastune.advise.doctor.checks.CHECKS`` (one small function each). This module gathers
the facts they read into a ``Context`` -- first running the BLAS in a child process, so a setting
that crashes the BLAS (``OPENBLAS_CORETYPE`` naming a kernel the CPU lacks) becomes a finding and
not the death of doctor -- then runs every check and returns plain data.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Mapping

from blastune import __version__
from blastune.facts.cpu import CpuInfo
from blastune.core.counts import check_threads
from blastune.facts.environment import current_env
from blastune.advise.doctor.probe import ProbeResult

DOCTOR_SCHEMA = "blastune.doctor/1"
SEVERITIES = ("ok", "info", "warning", "error")


@dataclass
class Finding:
    id: str
    severity: str   # ok | info | warning | error
    finding: str    # one line: what is the case
    fix: str = ""   # one line: a command or env var; empty when nothing needs doing

    def to_dict(self):
        return asdict(self)


@dataclass
class Context:
    """Everything the checks read. Built once; checks never probe the system themselves."""
    jobs: int
    env: Mapping[str, str]
    cpu: CpuInfo
    cpu_flags: set[str]
    loaded: list = field(default_factory=list)     # LibraryInfo of every BLAS/OpenMP lib loaded here
    bindings: list = field(default_factory=list)   # detect.Binding: what numpy/scipy call
    probe: ProbeResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def blas_libs(self):
        return [lib for lib in self.loaded if lib.api != "openmp"]

    @property
    def omp_libs(self):
        return [lib for lib in self.loaded if lib.api == "openmp"]

    def users_of(self, path: str) -> list[str]:
        """Which packages call into ``path`` ('numpy', 'scipy'), for findings a user recognises."""
        return sorted({b.package for b in self.bindings if b.library and b.library.filepath == path})


@dataclass
class DoctorReport:
    schema: str
    blastune_version: str
    jobs: int
    usable_cores: int
    usable_basis: str
    findings: list[Finding]
    probe: ProbeResult | None
    libraries: list[dict]
    env: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def exit_status(self, strict: bool = False) -> int:
        """0 clean, 2 any error, 1 warnings (only when ``strict``)."""
        sev = {f.severity for f in self.findings}
        if "error" in sev:
            return 2
        if strict and "warning" in sev:
            return 1
        return 0

    def by_severity(self, severity: str) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity]

    def ids(self, severity: str | None = None) -> set[str]:
        return {f.id for f in self.findings if severity is None or f.severity == severity}

    def to_dict(self):
        return {
            "schema": self.schema,
            "blastune_version": self.blastune_version,
            "jobs": self.jobs,
            "usable_cores": self.usable_cores,
            "usable_basis": self.usable_basis,
            "exit_status": self.exit_status(False),
            "exit_status_strict": self.exit_status(True),
            "counts": {s: len(self.by_severity(s)) for s in SEVERITIES},
            "findings": [f.to_dict() for f in self.findings],
            "probe": self.probe.to_dict() if self.probe else None,
            "libraries": self.libraries,
            "env": self.env,
            "notes": self.notes,
        }


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
    from blastune.advise.doctor.checks import CHECKS

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
