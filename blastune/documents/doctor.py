"""The ``blastune.doctor/1`` document (``blastune doctor --json``, ``blastune.doctor().to_dict()``), typed.

``DoctorDocument.from_dict`` reads a saved report (0.1.0 files included) through ``Fields``; anything
malformed is one line naming the field. ``to_dict`` gives back the same keys (a later version's
additions kept in ``extra``). The live objects are ``blastune.advise.doctor.model``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blastune.documents.base import Fields

SCHEMA = "blastune.doctor/1"
KIND = "doctor"
SEVERITIES = ("ok", "info", "warning", "error")


@dataclass(frozen=True)
class FindingDoc:
    id: str
    severity: str
    finding: str
    fix: str = ""

    @classmethod
    def from_fields(cls, f: Fields) -> "FindingDoc":
        return cls(
            id=f.str("id"),
            severity=f.str("severity", choices=SEVERITIES),
            finding=f.str("finding"),
            fix=f.str("fix", ""),
        )

    def to_dict(self) -> dict:
        return {"id": self.id, "severity": self.severity, "finding": self.finding, "fix": self.fix}


@dataclass
class DoctorDocument:
    schema: str
    blastune_version: str
    jobs: int
    usable_cores: int
    usable_basis: str
    exit_status: int
    exit_status_strict: int
    counts: dict[str, int]
    findings: list[FindingDoc]
    probe: dict | None
    libraries: list[dict]
    env: dict[str, str]
    notes: list[str]
    extra: dict = field(default_factory=dict)

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
    def from_dict(cls, data, source: str = "") -> "DoctorDocument":
        f = Fields(data, "", source)
        schema = f.str("schema")
        if schema.split("/")[0] != SCHEMA.split("/")[0]:
            f.fail(f"expected a {SCHEMA} document, got {schema!r}", "schema")
        counts_f = f.sub("counts")
        counts = {s: counts_f.count(s, 0) for s in SEVERITIES}
        probe = None
        if f.has("probe"):
            p = f.sub("probe")
            p.bool("ok"), p.str("stage"), p.number("seconds", lo=0)
            probe = dict(p.data)
        libraries = f.each(
            "libraries", lambda lf: (lf.str("vendor"), lf.str("filepath"), dict(lf.data))[2]
        )
        env = f.dict("env")
        for name in env:
            f.sub("env").str(name)
        return cls(
            schema=schema,
            blastune_version=f.str("blastune_version"),
            jobs=f.count("jobs", lo=1),
            usable_cores=f.count("usable_cores", lo=1),
            usable_basis=f.str("usable_basis"),
            exit_status=f.count("exit_status", hi=2),
            exit_status_strict=f.count("exit_status_strict", hi=2),
            counts=counts,
            findings=f.each("findings", FindingDoc.from_fields),
            probe=probe,
            libraries=libraries,
            env=env,
            notes=[str(n) for n in f.list("notes", [])],
            extra={k: v for k, v in f.data.items() if k not in cls.KEYS},
        )

    def by_severity(self, severity: str) -> list[FindingDoc]:
        return [x for x in self.findings if x.severity == severity]

    def to_dict(self) -> dict:
        return {
            "schema": self.schema,
            "blastune_version": self.blastune_version,
            "jobs": self.jobs,
            "usable_cores": self.usable_cores,
            "usable_basis": self.usable_basis,
            "exit_status": self.exit_status,
            "exit_status_strict": self.exit_status_strict,
            "counts": self.counts,
            "findings": [x.to_dict() for x in self.findings],
            "probe": self.probe,
            "libraries": self.libraries,
            "env": self.env,
            "notes": self.notes,
            **self.extra,
        }
