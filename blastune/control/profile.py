"""Saved recommendations for this machine and BLAS, used by ``limit("auto")`` and ``blastune env --auto``.

One JSON file per fingerprint in ``results.cache_dir()``: ``profile-<id>.json``. The fingerprint is
taken over the CPU, the usable cores and the BLAS that serves numpy -- and only that BLAS, so the key
does not change with whether this process happened to import scipy (which may bring its own copy).
A profile whose fingerprint differs (copied from another machine, or written before a BLAS upgrade)
is ignored, and the reason says so.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = "blastune.profile/1"
_fp_cache: dict | None = None


def profile_fingerprint() -> dict:
    """``results.fingerprint`` over numpy's BLAS (imported here: it is what the profile is about)."""
    global _fp_cache
    if _fp_cache is None:
        import numpy  # noqa: F401

        from blastune.facts.detect import binding
        from blastune.facts.fingerprint import fingerprint

        lib = binding("numpy", "blas").library
        _fp_cache = fingerprint(libraries=[lib] if lib is not None else [])
    return _fp_cache


def matches_here(fp: dict | None) -> tuple[bool, str]:
    """Was ``fp`` (from a saved file) taken on this machine with this BLAS? (yes/no, what differs)."""
    here = profile_fingerprint()
    if not isinstance(fp, dict):
        return False, "the file has no fingerprint"
    diffs = [k for k in ("cpu_model", "machine", "simd", "usable_cores") if fp.get(k) != here.get(k)]
    if diffs:
        return False, "measured on another machine (" + ", ".join(
            f"{k} {fp.get(k)!r}, here {here.get(k)!r}" for k in diffs) + ")"
    # the file may list more libraries (scipy's copy); numpy's BLAS must be among them
    missing = [lib for lib in here.get("libraries", []) if lib not in (fp.get("libraries") or [])]
    if missing:
        return False, f"measured with another BLAS ({', '.join(fp.get('libraries') or ['none'])}; here {missing[0]})"
    return True, "same machine and BLAS"


def profile_path(fp_id: str | None = None) -> Path:
    from blastune.core.files import cache_dir

    return cache_dir() / f"profile-{fp_id or profile_fingerprint()['id']}.json"


def load_profile() -> tuple[dict | None, list[str]]:
    """This machine's profile (or None) and notices about profiles that were ignored."""
    path = profile_path()
    notices = []
    data = None
    if path.exists():
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or data.get("schema") != SCHEMA:
                raise ValueError("not a blastune profile")
            ok, why = matches_here(data.get("fingerprint"))
            if not ok or data["fingerprint"].get("id") != profile_fingerprint()["id"]:
                notices.append(f"ignored profile {path}: {why}")
                data = None
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            notices.append(f"ignored unreadable profile {path}: {exc}")
            data = None
    if data is None:
        others = [p for p in _all_profiles() if p != path]
        if others:
            notices.append(f"ignored {len(others)} saved profile(s) from another machine or BLAS "
                           f"in {path.parent}")
    return data, notices


def _all_profiles() -> list[Path]:
    from blastune.core.files import cache_dir

    try:
        return sorted(cache_dir().glob("profile-*.json"))
    except OSError:
        return []


def save_entries(entries: dict[int, dict], source: str) -> Path:
    """Merge per-jobs recommendations ({jobs: {"threads", "layout", "reason"}}) into this machine's profile."""
    from blastune.core.files import atomic_write_json

    data, _ = load_profile()
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if data is None:
        data = {"schema": SCHEMA, "fingerprint": profile_fingerprint(), "created": now, "entries": {}}
    for jobs, entry in entries.items():
        data["entries"][str(jobs)] = {**entry, "source": source, "measured": now}
    data["updated"] = now
    path = profile_path()
    atomic_write_json(path, data)
    return path


def auto_threads(jobs: int | None = None) -> tuple[int, str]:
    """BLAS threads per job for ``jobs`` concurrent jobs (None = 1) and a one-line reason.

    From this machine's saved profile when it has an entry for that many jobs; otherwise the usable
    cores divided among the jobs (at least 1).
    """
    from blastune.facts.cpu import usable_cores
    from blastune.errors import BlastuneError

    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise BlastuneError(f"invalid jobs {jobs!r}: must be a whole number >= 1")
    n_jobs = jobs or 1
    try:
        data, notices = load_profile()
    except Exception as exc:  # a profile must never break a program that only asked for a thread count
        data, notices = None, [f"profile not read ({type(exc).__name__}: {exc})"]
    entry = ((data or {}).get("entries") or {}).get(str(n_jobs))
    if isinstance(entry, dict) and isinstance(entry.get("threads"), int) and entry["threads"] >= 1:
        why = entry.get("reason") or f"measured layout {entry.get('layout')}"
        return entry["threads"], f"saved profile for {n_jobs} job(s) ({profile_path().name}): {why}"
    cores, basis = usable_cores()
    threads = max(1, cores // n_jobs)
    reason = f"{cores} usable cores ({basis}) // {n_jobs} job(s) = {threads}"
    if data is not None:
        reason += f"; the saved profile has no entry for {n_jobs} job(s)"
    else:
        reason += "; no saved profile for this machine (run `blastune recommend` to measure one)"
    if notices:
        reason += "; " + "; ".join(notices)
    return threads, reason


def clear_cache() -> None:
    """Forget the fingerprint (tests that swap BLAS or cache directories within one process)."""
    global _fp_cache
    _fp_cache = None


__all__ = ["auto_threads", "load_profile", "save_entries", "profile_path", "profile_fingerprint",
           "matches_here", "SCHEMA"]
