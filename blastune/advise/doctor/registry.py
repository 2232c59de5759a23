"""The one list of doctor checks: ``@check("id")`` registers a function in ``CHECKS``.

A check is ``fn(ctx: Context) -> Finding | list[Finding]``; it reads only the ``Context`` (facts
gathered once, with the one count of usable CPUs, physical cores and threads per job) and never the
system, and says ``ok`` when all is well, so the report shows what was checked; the registry stamps
the check's id on its findings. The general checks (``checks.py``) and the big-machine ones
(``topology_checks.py``) register the same way; a vendor family's check (``doctor_check``, answered
by ``Family.advise``) is read from the vendor registry when the doctor runs, so a family registered
after this module was imported is checked too. ``all_checks()`` lists them in report order.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from blastune.advise.doctor.model import Context
from blastune.documents.doctor import Finding
from blastune.libraries import BLAS_FAMILIES

# (id, check) in the order the report lists them
CHECKS: list = []
_families_at: int | None = None  # where in CHECKS the vendor families' checks go (None: the end)


def stamped(check_id: str, fn):
    """``fn`` returning a list of Findings that carry ``check_id``."""

    @functools.wraps(fn)
    def run(ctx: Context) -> list[Finding]:
        found = fn(ctx)
        return [replace(a, id=check_id) for a in ([found] if isinstance(found, Finding) else found)]

    run.check_id = check_id
    return run


def check(check_id: str):
    """Register ``fn(ctx) -> Finding | list[Finding]`` as the doctor check ``check_id``."""

    def register(fn):
        if any(cid == check_id for cid, _ in CHECKS):
            raise ValueError(f"doctor check id {check_id!r} registered twice")
        run = stamped(check_id, fn)
        CHECKS.append((check_id, run))
        return run

    return register


def family_checks_here() -> None:
    """The vendor families' checks come at this point of the report."""
    global _families_at
    _families_at = len(CHECKS)


def family_check(fam):
    """The doctor check a family brings (``Family.doctor_check``), answered by ``Family.advise``."""

    def run(ctx: Context) -> list[Finding]:
        libs = [lib for lib in ctx.blas_libs if lib.vendor == fam.name]
        return fam.advise(libs, ctx.env, ctx.fair_share, ctx.label)

    run.__name__ = f"check_{fam.name}"
    return stamped(fam.doctor_check, run)


def all_checks() -> list:
    """(id, check) of every check, the vendor families' (those registered now) among them."""
    at = len(CHECKS) if _families_at is None else _families_at
    taken = {cid for cid, _ in CHECKS}
    families = [
        (fam.doctor_check, family_check(fam))
        for fam in BLAS_FAMILIES
        if fam.doctor_check and fam.doctor_check not in taken
    ]
    return [*CHECKS[:at], *families, *CHECKS[at:]]
