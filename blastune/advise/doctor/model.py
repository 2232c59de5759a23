"""The doctor's data: a Finding, the Context every check reads, and the report.

Checks (``checks.py``) and the runner (``report.py``) both stand on this module, never on each other.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping

from blastune.advise.doctor.probe import ProbeResult
from blastune.facts.cpu import CpuInfo
from blastune.facts.schedstat import Pressure

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
    pressure: Pressure | None = None        # /proc/pressure/cpu when the context was built (None: no PSI)
    pressure_now_pct: float | None = None   # PSI "some" over the doctor's own run, in percent
    pressure_window_s: float | None = None  # how long that run was

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
