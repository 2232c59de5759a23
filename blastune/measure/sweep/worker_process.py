"""A sweep worker: one fresh process per thread count, for libraries that read their thread count
only at start-up. The parent sets the thread variables in our environment before we import numpy.

Protocol: one JSON job on stdin; one JSON object per line on stdout -- {"start": spec},
{"point": record}, {"skip": spec} (the sweep's budget ran out) or {"error": message}. Anything else
we print goes to stderr. We die with the parent (``blastune.measure.children.die_with_parent``).
"""

from __future__ import annotations

import json
import os
import sys
import time

PARENT_VAR = "BLASTUNE_SWEEP_PARENT"  # the parent's pid: we end when it does


def run(job: dict, emit) -> None:
    """``job``: the sweep's ``point_context`` and this worker's threads, specs, budget, deadline."""
    from blastune.errors import BlastuneError
    from blastune.measure.contention import SOURCE_SCHEDSTAT, WorkWait
    from blastune.measure.sweep.libraries import serving_libraries, threads_seen_at_start
    from blastune.measure.sweep.points import point_spec, prepare, time_point

    threads, specs = job["threads"], job["specs"]
    start, budget = time.perf_counter(), job["budget"]
    measured = job.get("measured_before", 0)
    deadline = job.get("deadline")
    watch = WorkWait() if job["source"] == SOURCE_SCHEDSTAT else None
    try:
        # info() once: it inspects every library
        seen = threads_seen_at_start(serving_libraries(job["lib"]))
        for i, (op_name, size, dtype) in enumerate(specs):
            spec = point_spec(op_name, size, dtype, threads)
            # CLOCK_MONOTONIC is one clock for every process of the machine: the parent's deadline
            # holds here; the parent started us before the deadline: that covers our first point
            if i > 0 and measured and deadline is not None and time.monotonic() >= deadline:
                emit({"skip": spec})
                continue
            emit({"start": spec})
            prepared = prepare(job, op_name, size, dtype)
            left = max(0.0, budget - (time.perf_counter() - start)) / (len(specs) - i)
            point = time_point(prepared, spec, job, left, watch, isolated=True, threads_seen=seen)
            del prepared
            emit({"point": point.to_dict()})
            measured += 1
    except BlastuneError as exc:
        emit({"error": str(exc)})
        sys.exit(2)


def main() -> None:
    from blastune.measure.children import die_with_parent

    parent = os.environ.get(PARENT_VAR, "")
    # before anything can block
    die_with_parent(int(parent) if parent.isascii() and parent.isdigit() else None)
    job = json.loads(sys.stdin.read())
    # the protocol owns the pipe; anything else that prints -- Python or a library's C code
    # writing to file descriptor 1 -- goes to stderr
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def emit(msg):
        out.write(json.dumps(msg, default=str) + "\n")
        out.flush()

    try:
        run(job, emit)
    except KeyboardInterrupt:  # the parent saves what we sent; nothing to add
        sys.exit(130)
    except BrokenPipeError:  # the parent is gone or stopped reading: nothing left to report to
        os._exit(1)


if __name__ == "__main__":
    main()
