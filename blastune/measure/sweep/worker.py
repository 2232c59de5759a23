"""A sweep worker: one fresh process per thread count, for libraries that read their thread count only
at start-up. The parent sets the thread variables in our environment before we import numpy.

Protocol: one JSON job on stdin; one JSON object per line on stdout -- {"start": spec},
{"point": record} or {"error": message}. Anything else we print goes to stderr.
"""
from __future__ import annotations

import json
import sys
import time


def _threads_seen(served: dict) -> dict:
    """What the serving library says it runs: queried at run time where possible, else its env setting."""
    from blastune.control.limits import get_threads
    from blastune.measure.sweep.core import _files

    files = _files(served)
    got = get_threads("all")
    seen = {f: got[f] for f in files if f in got}
    if len(seen) < len(files):
        for api_lib in served.values():
            if api_lib and api_lib["filepath"] not in seen:
                seen[api_lib["filepath"]] = api_lib["num_threads"]
    return seen


def run(job: dict, emit) -> None:
    from blastune.measure.load import LoadProbe
    from blastune.errors import BlastuneError
    from blastune.measure.ops import OPS
    from blastune.measure.sweep.core import _point_record, check_memory, serving_libraries
    from blastune.measure.timing import measure

    threads, lib, settings = job["threads"], job["lib"], job["settings"]
    specs = job["specs"]
    start, budget = time.perf_counter(), job["budget"]
    try:
        seen = _threads_seen(serving_libraries(lib))  # info() once: it inspects every loaded library
        for i, (op_name, size, dtype) in enumerate(specs):
            emit({"start": {"op": op_name, "size": size, "dtype": dtype, "threads": threads}})
            check_memory(op_name, size, dtype)
            prepared = OPS[op_name].prepare(size, dtype, lib, settings["seed"])
            left = max(0.0, budget - (time.perf_counter() - start)) / (len(specs) - i)
            probe = LoadProbe()
            m = measure(prepared.fn, prepared.args, target_spread=settings["target_spread"],
                        min_repeats=settings["min_repeats"], budget=left)
            other = probe.other_cores()
            impl = prepared.impl
            del prepared
            emit({"point": _point_record(op_name, lib, size, dtype, threads, impl, m, isolated=True,
                                         threads_seen=seen, usable=job["usable"], other_cores=other)})
    except BlastuneError as exc:
        emit({"error": str(exc)})
        sys.exit(2)


def main() -> None:
    import os

    job = json.loads(sys.stdin.read())
    # the protocol owns the pipe; anything else that prints -- Python or a library's C code writing to
    # file descriptor 1 -- goes to stderr
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


if __name__ == "__main__":
    main()
