"""The saved profile: this machine's measured advice, per workload and number of concurrent jobs.

Layout of ``blastune.profile/2``::

    {"schema": "blastune.profile/2", "fingerprint": {...}, "created": ISO, "updated": ISO,
     "workloads": {"op:numpy:dot:300:float64": {
         "label": "numpy dot 300x300 float64",
         "entries": {"8": {"threads": 1, "layout": "process:8x1", "reason": "...",
                           "source": "...", "measured": ISO,
                           "noisy": null, "extrapolated": false}}}}}

A workload is keyed by ``documents.jobs.Workload.key``: an op, its size, dtype and library
(``op:numpy:dot:300:float64``) or a ``--func`` (``func:pkg.mod:fn``). Keeping them apart is what
stops one measurement from erasing another's advice. ``noisy`` holds the reason when the entry came
from contended or unstable data that the user accepted (``--accept-noisy``); such an entry never
replaces a clean one.

``blastune.profile/1`` (0.1.0: ``"entries": {"1": {...}}`` with no workload) still loads: its
entries become the workload ``unrecorded``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blastune.core.counts import MAX_THREADS
from blastune.documents.base import REQUIRED, DocumentError, Fields, field_of, plain, read_model
from blastune.documents.common import check_fingerprint

SCHEMA = "blastune.profile/2"
LEGACY_SCHEMA = "blastune.profile/1"
UNRECORDED = "unrecorded"  # the workload of 0.1.0 entries, which did not record one


@dataclass
class ProfileEntry:
    """The advice for one workload at one number of concurrent jobs."""

    jobs: int  # the key it is saved under
    # BLAS threads per job: a C int (OpenBLAS, OpenMP), the one bound core.counts.MAX_THREADS
    threads: int = field_of("threads")
    layout: str = field_of("str", "", new=REQUIRED)  # the --layouts spelling it came from
    reason: str = field_of("str", "", new=REQUIRED)  # the measured numbers behind it
    source: str = field_of("str", "")  # the file or measurement it came from
    measured: str = field_of("str", "")  # ISO time it was saved
    # why the data were not clean (saved only with --accept-noisy)
    noisy: str | None = field_of("str", None)
    # not measured at this job count: the cores divided among the jobs
    extrapolated: bool = field_of("bool", False)

    @property
    def clean(self) -> bool:
        return self.noisy is None

    def to_dict(self) -> dict:
        out = plain(self)
        del out["jobs"]  # the key of the entry
        return out


@dataclass
class WorkloadAdvice:
    key: str
    label: str
    entries: dict[int, ProfileEntry] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "entries": {str(j): e.to_dict() for j, e in sorted(self.entries.items())},
        }


def _jobs_key(f: Fields, name: str) -> int:
    """'8' -> 8: entry keys are job counts written as ASCII digits."""
    if not (name.isascii() and name.isdigit() and 1 <= int(name) <= MAX_THREADS):
        f.fail(
            f"expected a number of jobs (a whole number from 1 to {MAX_THREADS}) as the key, "
            f"got {name!r}",
            name,
        )
    return int(name)


def _entries(f: Fields) -> dict[int, ProfileEntry]:
    entries = f.sub("entries")
    jobs = {name: _jobs_key(entries, name) for name in entries.data}
    return {jobs[n]: read_model(ProfileEntry, entries.sub(n), jobs=jobs[n]) for n in jobs}


@dataclass
class Profile:
    fingerprint: dict
    created: str
    updated: str
    workloads: dict[str, WorkloadAdvice] = field(default_factory=dict)
    schema: str = SCHEMA

    @classmethod
    def from_dict(cls, data, source: str = "") -> "Profile":
        f = Fields(data, "", source)
        schema = f.str("schema", choices=(SCHEMA, LEGACY_SCHEMA))
        fp = f.sub("fingerprint")
        check_fingerprint(fp, id_required=True)
        created = f.str("created", "")
        updated = f.str("updated", created)
        if schema == LEGACY_SCHEMA:
            workloads = {
                UNRECORDED: WorkloadAdvice(
                    UNRECORDED, "workload not recorded (saved by blastune 0.1)", _entries(f)
                )
            }
        else:
            workloads = {
                key: WorkloadAdvice(key, one.str("label", key), _entries(one))
                for key, one in f.mapping("workloads", of="sub").items()
            }
        return cls(fingerprint=dict(fp.data), created=created, updated=updated, workloads=workloads)

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "fingerprint": self.fingerprint,
            "created": self.created,
            "updated": self.updated,
            "workloads": {k: w.to_dict() for k, w in sorted(self.workloads.items())},
        }

    @property
    def id(self) -> str:
        return str(self.fingerprint.get("id"))

    def entries(self) -> list[tuple[WorkloadAdvice, ProfileEntry]]:
        return [(w, e) for w in self.workloads.values() for _, e in sorted(w.entries.items())]

    def merge(self, key: str, label: str, entries: dict[int, ProfileEntry]) -> dict[int, str]:
        """Add ``entries`` for workload ``key``; a noisy entry never replaces a clean one.

        Returns, by job count, one sentence per entry that was kept instead of the new one."""
        kept = {}
        w = self.workloads.setdefault(key, WorkloadAdvice(key, label))
        w.label = label
        for jobs, new in sorted(entries.items()):
            old = w.entries.get(jobs)
            if old is not None and old.clean and not new.clean:
                kept[jobs] = (
                    f"kept the clean entry for {jobs} job(s) of {key} ({old.threads} thread(s), "
                    f"{old.measured}): the new measurement was noisy ({new.noisy})"
                )
                continue
            w.entries[jobs] = new
        return kept

    def choose(
        self, jobs: int, workload: str | None = None
    ) -> tuple[WorkloadAdvice, ProfileEntry] | None:
        """The entry ``env --auto --jobs N`` uses: for ``workload`` when named; otherwise, among
        every workload's entry for ``jobs``, a clean one before a noisy one, then the most recently
        measured (so what ``recommend --jobs N`` has just saved is what ``env --auto --jobs N``
        uses)."""
        found = [
            (w, w.entries[jobs])
            for w in self.workloads.values()
            if jobs in w.entries and (workload is None or w.key == workload)
        ]
        if not found:
            return None
        return max(
            found, key=lambda we: (we[1].clean, we[1].measured, not we[1].extrapolated, we[0].key)
        )


__all__ = [
    "Profile",
    "ProfileEntry",
    "WorkloadAdvice",
    "SCHEMA",
    "LEGACY_SCHEMA",
    "UNRECORDED",
    "DocumentError",
]
