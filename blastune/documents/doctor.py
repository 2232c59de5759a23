"""The doctor's report (``blastune.doctor/1``): what ``blastune.doctor()`` returns, what
``doctor --json`` prints and what ``DoctorReport.from_dict`` reads back (0.1.0 files included).

``Finding`` is the one shape of a finding: a check's result, a vendor family's advice
(``Family.advise``; ``blastune.libraries.Advice`` is this class) and an item of the document.
A check or a family leaves ``id`` empty; the check registry stamps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blastune.documents.base import Fields, field_of, read_model, read_schema

SCHEMA = "blastune.doctor/1"
KIND = "doctor"
SEVERITIES = ("ok", "info", "warning", "error")  # the document's counts, in this order
_WORST_FIRST = ("error", "warning", "info", "ok")
# what to_dict derives from the findings: checked when read, never kept
_DERIVED = ("exit_status", "exit_status_strict", "counts")


@dataclass(frozen=True)
class Finding:
    severity: str = field_of("str", choices=SEVERITIES)  # ok | info | warning | error
    finding: str = field_of("str")  # one line: what is the case
    # one line: a command or env var; empty when nothing needs doing
    fix: str = field_of("str", "")
    id: str = ""  # the check that found it

    def to_dict(self) -> dict:
        return {"id": self.id, "severity": self.severity, "finding": self.finding, "fix": self.fix}


@dataclass
class DoctorReport:
    jobs: int = field_of("count", lo=1)
    usable_cores: int = field_of("count", lo=1)
    usable_basis: str = field_of("str")
    findings: list[Finding]
    probe: dict | None = None  # the BLAS probe's result (ProbeResult.to_dict); None: skipped
    libraries: list[dict] = field(default_factory=list)
    env: dict[str, str] = field_of("mapping")
    notes: list[str] = field(default_factory=list)
    schema: str = SCHEMA
    blastune_version: str = field_of("str", new="")
    extra: dict = field(default_factory=dict)  # keys a later version added, kept as they came

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
        report = read_model(
            cls,
            f,
            schema=schema,
            findings=f.each("findings", lambda one: read_model(Finding, one, id=one.str("id"))),
            probe=probe,
            libraries=f.each(
                "libraries", lambda lf: (lf.str("vendor"), lf.str("filepath"), dict(lf.data))[2]
            ),
            notes=[str(n) for n in f.list("notes", [])],
        )
        for derived in _DERIVED:
            del report.extra[derived]
        return report

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
