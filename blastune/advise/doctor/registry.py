"""The one list of doctor checks: ``@check("id")`` registers a function in ``CHECKS``.

A check is ``fn(ctx: Context) -> list[Advice]``; it reads only the ``Context`` (facts gathered once,
topology included) and never the system. The general checks (``checks.py``) and the big-machine
ones (``topology_checks.py``) register the same way; ``report.all_checks()`` lists them in
registration order.
"""

from __future__ import annotations

import functools

from blastune.advise.doctor.model import Context, Finding

# (id, check) in the order the report lists them
CHECKS: list = []


def check(check_id: str):
    """Register ``fn(ctx) -> list[Advice]`` as the doctor check ``check_id``; calling the registered
    function returns Findings carrying that id."""

    def register(fn):
        @functools.wraps(fn)
        def run(ctx: Context) -> list[Finding]:
            return [
                a if isinstance(a, Finding) else Finding(check_id, a.severity, a.finding, a.fix)
                for a in fn(ctx)
            ]

        run.check_id = check_id
        if any(cid == check_id for cid, _ in CHECKS):
            raise ValueError(f"doctor check id {check_id!r} registered twice")
        CHECKS.append((check_id, run))
        return run

    return register
