"""The doctor's report (``blastune.doctor/1``): what ``blastune.doctor()`` returns, what
``doctor --json`` prints and what ``DoctorReport.from_dict`` reads back (0.1.0 files included).

``Finding`` is the one shape of a finding: a check's result, a vendor family's advice
(``Family.advise``; ``blastune.libraries.Advice`` is this class) and an item of the document.
A check or a family leaves ``id`` empty; the check registry stamps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blastune.documents.base import Fields, read_schema

SCHEMA = "blastune.doctor/1"
KIND = "doctor"
SEVERITIES = ("ok", "info", "warning", "error")  # the document's counts, in this order
_WORST_FIRST = ("error", "warning", "info", "ok")


@dataclass(frozen=True)
class Finding:
    severity: str  # ok | info | warning | error
    finding: str  # one line: what is the case
    fix: str = ""  # one line: a command or env var; empty when nothing needs doing
    id: str = ""  # the check that found it

    @classmethod
    def from_fields(cls, f: Fields) -> "Finding":
        return cls(
            id=f.str("id"),
            severity=f.str("severity", choices=SEVERITIES),
            finding=f.str("finding"),
            fix=f.str("fix", ""),
        )

    def to_dict(self) -> dict:
        return {"id": self.id, "severity": self.severity, "finding": self.finding, "fix": self.fix}


@dataclass
class DoctorReport:
    jobs: int
    usable_cores: int
    usable_basis: str
    findings: list[Finding]
    probe: dict | None = None  # the BLAS probe's result (ProbeResult.to_dict); None: skipped
    libraries: list[dict] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    schema: str = SCHEMA
    blastune_version: str = ""
    extra: dict = field(default_factory=dict)  # keys a later version added, kept as they came

    KEYS = (
        "schema",
        "blastune_version",
        "jobs",
        "usable_cores",
        "usable_basis",
        "exit_status",
        "exit_status_strict",
        "counts",
        "findings",
        "probe",
        "libraries",
        "env",
        "notes",
    )

    @classmethod
    def from_dict(cls, data, source: str = "") -> "DoctorReport":
        """A saved report; anything malformed is one line naming the field. The counts and exit
        statuses are checked and then derived again from the findings."""
        f = Fields(data, "", source)
        schema = read_schema(f, KIND, 1, named=SCHEMA)
        counts = f.sub("counts")
        for s in SEVERITIES:
            counts.count(s, 0)
        f.count("exit_status", hi=2), f.count("exit_status_strict", hi=2)
        probe = None
        if f.has("probe"):
            p = f.sub("probe")
            p.bool("ok"), p.str("stage"), p.number("seconds", lo=0)
            probe = dict(p.data)
        env = f.mapping("env")
        return cls(
            schema=schema,
            blastune_version=f.str("blastune_version"),
            jobs=f.count("jobs", lo=1),
            usable_cores=f.count("usable_cores", lo=1),
            usable_basis=f.str("usable_basis"),
            findings=f.each("findings", Finding.from_fields),
            probe=probe,
            libraries=f.each(
                "libraries", lambda lf: (lf.str("vendor"), lf.str("filepath"), dict(lf.data))[2]
            ),
            env=env,
            notes=[str(n) for n in f.list("notes", [])],
            extra={k: v for k, v in f.data.items() if k not in cls.KEYS},
        )

    def exit_status(self, strict: bool = False) -> int:
        """0 clean, 2 any error, 1 warnings (only when ``strict``)."""
        sev = {f.severity for f in self.findings}
        if "error" in sev:
            return 2
        return 1 if strict and "warning" in sev else 0

    def by_severity(self, severity: str) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity]

    def worst_first(self) -> list[Finding]:
        """Errors, then warnings, info and ok (the HTML report's order)."""
        return sorted(self.findings, key=lambda f: _WORST_FIRST.index(f.severity))

    def tally(self) -> str:
        """'1 error, 2 warnings, 0 info, 14 ok': the counts under the terminal and HTML tables."""
        plural = {"error": "errors", "warning": "warnings"}  # 'info' and 'ok' have none
        counts = ((s, len(self.by_severity(s))) for s in _WORST_FIRST)
        return ", ".join(f"{n} {s if n == 1 else plural.get(s, s)}" for s, n in counts)

    def to_dict(self) -> dict:
        return {
            "schema": self.schema,
            "blastune_version": self.blastune_version,
            "jobs": self.jobs,
            "usable_cores": self.usable_cores,
            "usable_basis": self.usable_basis,
            "exit_status": self.exit_status(False),
            "exit_status_strict": self.exit_status(True),
            "counts": {s: len(self.by_severity(s)) for s in SEVERITIES},
            "findings": [x.to_dict() for x in self.findings],
            "probe": self.probe,
            "libraries": self.libraries,
            "env": self.env,
            "notes": self.notes,
            **self.extra,
        }
