"""Measure points in this process, the thread count set at run time with ``blastune.limit``."""

from __future__ import annotations

import warnings

from blastune.errors import NotControllableWarning
from blastune.measure.contention import SOURCE_SCHEDSTAT, WorkWait
from blastune.measure.sweep.libraries import read_back
from blastune.measure.sweep.points import point_context, point_spec, prepare, time_point


def group_by_arrays(points) -> list[tuple[str, int, str, list[int]]]:
    """(op, size, dtype, [threads...]): every thread count of one array set, built once."""
    grouped: dict[tuple, list[int]] = {}
    for o, n, d, t in points:
        grouped.setdefault((o, n, d), []).append(t)
    return [(*k, v) for k, v in grouped.items()]


def run_inprocess(session, points, files: list[str]) -> list[tuple]:
    """Measure ``points`` here; return those whose thread count the library did not take (for
    workers)."""
    from blastune.control.limits import limit

    ctx = point_context(session.doc)
    watch = WorkWait() if ctx["source"] == SOURCE_SCHEDSTAT else None
    deferred = []
    for op_name, size, dtype, thread_list in group_by_arrays(points):
        prepared = None  # built for the first point that may start, freed before the next set
        for t in thread_list:
            spec = point_spec(op_name, size, dtype, t)
            if not session.may_start():
                session.not_measured(spec)
                continue
            prepared = prepared or prepare(ctx, op_name, size, dtype)
            session.on_point("start", spec)
            with warnings.catch_warnings():
                # the sweep reads the count back itself (and measures a refused one in a worker):
                # the limiter's warning would only repeat that as a Python warning with a source
                # line
                warnings.simplefilter("ignore", NotControllableWarning)
                with limit(t, api="all"):
                    ok, seen = read_back(files, t)
                    if not ok:
                        deferred.append((op_name, size, dtype, t))
                        continue
                    point = time_point(
                        prepared,
                        spec,
                        ctx,
                        session.share_s(),
                        watch,
                        isolated=False,
                        threads_seen=seen,
                    )
                    # still inside the limit: an interrupt here must restore it too
                    session.add(point)
    return deferred
