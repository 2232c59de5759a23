"""Which library serves the ops, can its threads change here, and what does it say it runs?"""

from __future__ import annotations

import threading


def serving_libraries(lib: str, facts=None) -> dict:
    """{'blas': LibraryInfo-dict, 'lapack': ...} for the package that runs the ops."""
    from blastune.facts.info import info

    facts = facts or info()
    out = {}
    for api in ("blas", "lapack"):
        b = facts.binding(lib, api)
        out[api] = b.library.to_dict() if b is not None and b.library is not None else None
    return out


def needs_workers(served: dict) -> tuple[bool, str]:
    """True when thread counts must be set before the library starts (a fresh process per count)."""
    for api, lib in served.items():
        if lib is None:
            continue
        if lib["control"] == "env":
            return True, f"{lib['vendor']} ({api}) reads its thread count only at start-up"
        if lib["control"] != "runtime":
            return True, (
                f"{lib['vendor']} ({api}) has its thread count fixed when it was built; each count "
                "still ran in a fresh process, and 'ran N' shows what it really used"
            )
        if lib.get("per_thread") and threading.current_thread() is not threading.main_thread():
            return (
                True,
                f"{lib['vendor']} keeps threads per calling thread and the sweep is not on the "
                "main thread",
            )
    return False, "run-time control"


def library_files(served: dict) -> list[str]:
    """The files (paths) of the libraries serving the ops: what thread read-backs are keyed by."""
    return sorted({lib["filepath"] for lib in served.values() if lib})


def read_back(files: list[str], threads: int) -> tuple[bool, dict]:
    """After setting ``threads``: did every serving library take it? (ok, file -> count it
    reports)."""
    from blastune.control.limits import get_threads

    got = get_threads("all")
    seen = {f: got.get(f) for f in files}
    if not seen:  # the serving library was not identified: nothing to read back, nothing to defer
        return True, seen
    return all(v == threads for v in seen.values()), seen


def threads_seen_at_start(served: dict) -> dict:
    """In a worker: what the serving library runs -- queried at run time where possible, else the
    count it read from the environment at start-up."""
    from blastune.control.limits import get_threads

    files = library_files(served)
    got = get_threads("all")
    seen = {f: got[f] for f in files if f in got}
    if len(seen) < len(files):
        for api_lib in served.values():
            if api_lib and api_lib["filepath"] not in seen:
                seen[api_lib["filepath"]] = api_lib["num_threads"]
    return seen
