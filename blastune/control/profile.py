"""Saved advice for this machine and BLAS, used by ``limit("auto")`` and ``blastune env --auto``.

One JSON file per fingerprint in ``core.files.cache_dir()``: ``profile-<id>.json`` (model and rules:
``documents.profile``). The fingerprint is taken over the CPU, the usable cores and the BLAS that
serves numpy -- and only that BLAS, so the key does not change with whether this process happened to
import scipy (which may bring its own copy). A profile whose fingerprint differs (copied from
another machine, or written before a BLAS upgrade) is ignored, and the reason says so.

The file is a cache, and a broken cache is the cache's fault: reading it never breaks a program that
only asked for a thread count (``auto_threads`` falls back and says why, naming the file), and
saving into it never costs the caller the measurement or the advice (``save_advice`` raises
``ProfileError``, which callers turn into a notice). Updates are read-modify-write under the file's
lock, so concurrent writers (two ``jobs`` runs finishing together) keep each other's entries.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from blastune.documents.profile import Profile, ProfileEntry
from blastune.errors import BlastuneError
from blastune.core.counts import per_job

LOCK_WAIT_S = 30.0  # a profile update takes milliseconds; a writer waits this long for another one
_PROFILE_NAME = re.compile(r"profile-[0-9a-f]{16}\.json")
_fp_cache: dict | None = None


class ProfileError(BlastuneError):
    """This machine's saved profile cannot be read or written; the message names the file."""


def profile_fingerprint() -> dict:
    """``facts.fingerprint`` over numpy's BLAS (imported here: it is what the profile is about)."""
    global _fp_cache
    if _fp_cache is None:
        import numpy  # noqa: F401

        from blastune.facts.detect import binding
        from blastune.facts.fingerprint import fingerprint

        lib = binding("numpy", "blas").library
        _fp_cache = fingerprint(libraries=[lib] if lib is not None else [])
    return _fp_cache


def matches_here(fp: dict | None) -> tuple[bool, str]:
    """Was ``fp`` (from a saved file) taken on this machine with this BLAS? (yes/no, what
    differs)."""
    here = profile_fingerprint()
    if not isinstance(fp, dict):
        return False, "the file has no fingerprint"
    diffs = [
        k for k in ("cpu_model", "machine", "simd", "usable_cores") if fp.get(k) != here.get(k)
    ]
    if diffs:
        return False, "measured on another machine (" + ", ".join(
            f"{k} {fp.get(k)!r}, here {here.get(k)!r}" for k in diffs
        ) + ")"
    # the file may list more libraries (scipy's copy); numpy's BLAS must be among them
    libs = fp.get("libraries") if isinstance(fp.get("libraries"), list) else []
    missing = [lib for lib in here.get("libraries", []) if lib not in libs]
    if missing:
        return (
            False,
            f"measured with another BLAS ({', '.join(map(str, libs)) or 'none'}; "
            f"here {missing[0]})",
        )
    return True, "same machine and BLAS"


def profile_path() -> Path:
    from blastune.core.files import cache_dir

    return cache_dir() / f"profile-{profile_fingerprint()['id']}.json"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _corrupt(path: Path, why: str) -> ProfileError:
    said = f"the saved profile {path} is unreadable ({why}); "
    if _removable(path):
        return ProfileError(said + "`blastune profile clear` removes it")
    # a directory (or FIFO, socket) where the profile belongs: profile clear leaves it alone
    return ProfileError(
        said + "it is not a file blastune wrote, so `blastune profile clear` leaves it: move it "
        "away yourself"
    )


def _removable(path: Path) -> bool:
    """What ``clear_profiles`` removes: files and links, never a directory or a device."""
    return path.is_symlink() or path.is_file()


def read_profile(path: Path | None = None) -> tuple[Profile | None, list[str]]:
    """This machine's profile (None when there is none, or it belongs to another machine or BLAS)
    and notices about what was ignored. A corrupt file raises ``ProfileError`` naming it."""
    from blastune.documents.load import load_results

    path = path or profile_path()
    notices: list[str] = []
    profile = None
    if os.path.lexists(path):
        try:
            data = load_results(path, "profile")
            profile = Profile.from_dict(data, str(path))
        except BlastuneError as exc:
            raise _corrupt(path, str(exc).removeprefix(f"{path}: ")) from None
        ok, why = matches_here(profile.fingerprint)
        if not ok or profile.id != profile_fingerprint()["id"]:
            notices.append(
                f"ignored profile {path}: {why if not ok else 'its fingerprint id differs'}"
            )
            profile = None
    if profile is None:
        others = [p for p in all_profile_files() if p != path]
        if others:
            notices.append(
                f"ignored {len(others)} saved profile(s) from another machine or BLAS in "
                f"{path.parent}"
            )
    return profile, notices


def all_profile_files() -> list[Path]:
    """Every profile file blastune wrote in the cache directory (any machine or BLAS)."""
    from blastune.core.files import cache_dir

    try:
        return sorted(p for p in cache_dir().iterdir() if _PROFILE_NAME.fullmatch(p.name))
    except OSError:
        return []


@dataclass
class Saved:
    """What ``save_advice`` did: where, and which existing entries it kept instead of new ones."""

    path: Path
    kept: dict[int, str] = field(default_factory=dict)  # job count -> why the old entry stayed


def save_advice(workload: str, label: str, entries: dict[int, ProfileEntry]) -> Saved:
    """Merge ``entries`` (job count -> entry) for ``workload`` into this machine's profile.

    Read-modify-write under the profile's lock: a concurrent writer waits, and both keep their
    entries. A noisy entry never replaces a clean one (``Profile.merge``). A corrupt profile is not
    overwritten (it may be the user's hand edit): ``ProfileError`` says how to clear it. Entries
    without a ``measured`` time are stamped now."""
    from blastune.core.files import atomic_write_text, output_lock

    path = profile_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProfileError(
            f"cannot save the profile in {path.parent}: {exc.strerror or exc}"
        ) from None
    try:
        with output_lock(path, "profile", wait=LOCK_WAIT_S):
            profile, _ = read_profile(path)
            now = _now()
            if profile is None:
                profile = Profile(fingerprint=profile_fingerprint(), created=now, updated=now)
            for e in entries.values():
                e.measured = e.measured or now
            kept = profile.merge(workload, label, entries)
            profile.updated = now
            atomic_write_text(path, json.dumps(profile.to_dict(), indent=2) + "\n")
    except ProfileError:
        raise
    except BlastuneError as exc:
        raise ProfileError(f"profile not saved: {exc}") from None
    return Saved(path, kept)


@dataclass
class AutoChoice:
    """The thread count ``limit("auto")`` / ``env --auto`` use, and where it came from."""

    jobs: int
    threads: int
    reason: str
    workload: str | None = None  # the profile's workload key, when the profile answered
    entry: ProfileEntry | None = None
    path: str | None = None
    notices: list[str] = field(default_factory=list)
    fallback: str | None = None  # when no saved entry answered: one sentence saying so, and why
    broken: str | None = None  # the profile file exists but cannot be read: one line naming it


def auto_choice(jobs: int | None = None, workload: str | None = None) -> AutoChoice:
    """BLAS threads per job for ``jobs`` concurrent jobs (None = 1), from this machine's profile
    when it has an entry for that many jobs (``Profile.choose``); otherwise the usable cores divided
    among the jobs (at least 1). Never raises for the profile's sake: a broken one is a notice."""
    from blastune.core.counts import check_count
    from blastune.facts.cpu import usable_cores

    n_jobs = 1 if jobs is None else check_count(jobs, "number of jobs")
    broken = None
    try:
        profile, notices = read_profile()
    except ProfileError as exc:  # a corrupt cache is the cache's fault: said, with its path
        profile, notices, broken = None, [f"ignored: {exc}"], f"{exc}; ignored it"
    except Exception as exc:  # a profile never breaks a program that only asked for a thread count
        profile, notices = None, [f"profile not read ({type(exc).__name__}: {exc})"]
    found = profile.choose(n_jobs, workload) if profile is not None else None
    path = profile_path()
    if found is not None:
        w, entry = found
        noisy = f" [noisy: {entry.noisy}]" if entry.noisy else ""
        why = (
            f"saved profile for {n_jobs} job(s) of {w.key} ({path.name}): "
            f"{entry.reason or 'measured layout ' + entry.layout}{noisy}"
        )
        others = sorted(
            {
                f"{o.key} -> {o.entries[n_jobs].threads}"
                for o in profile.workloads.values()
                if o is not w and n_jobs in o.entries and o.entries[n_jobs].threads != entry.threads
            }
        )
        if others:
            why += (
                f"; other workloads differ ({', '.join(others)}): "
                "`blastune profile show` lists them"
            )
        return AutoChoice(n_jobs, entry.threads, why, w.key, entry, str(path), notices)
    cores, basis = usable_cores()
    threads = per_job(cores, n_jobs)
    division = f"{cores} usable cores ({basis}) // {n_jobs} job(s) = {threads}"
    reason = division
    if profile is not None:
        why = f"the saved profile has no entry for {n_jobs} job(s)" + (
            f" of {workload}" if workload else ""
        )
        reason += f"; {why}"
    elif broken is not None:
        why = "the saved profile is unreadable"
    else:
        why = "no saved profile for this machine"
        reason += "; no saved profile for this machine (run `blastune recommend` to measure one)"
    if notices:
        reason += "; " + "; ".join(notices)
    fallback = (
        f"{why}: using {division} thread(s) per job, not measured advice "
        f"(`blastune recommend --jobs {n_jobs}` measures it)"
    )
    return AutoChoice(n_jobs, threads, reason, None, None, str(path), notices, fallback, broken)


def auto_threads(jobs: int | None = None, workload: str | None = None) -> tuple[int, str]:
    """(threads, one-line reason): ``auto_choice`` for callers that need only those two."""
    c = auto_choice(jobs, workload)
    return c.threads, c.reason


@dataclass
class ProfileReport:
    """``blastune profile show``: the file, its entries, and which entry ``env --auto`` uses per job
    count."""

    path: str
    exists: bool
    profile: Profile | None
    auto: dict[int, str] = field(default_factory=dict)  # jobs -> the workload env --auto uses
    notices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "schema": "blastune.profile-show/1",
            "path": self.path,
            "exists": self.exists,
            "profile": self.profile.to_dict() if self.profile else None,
            "auto": {str(j): k for j, k in sorted(self.auto.items())},
            "notices": self.notices,
        }


def show_profile() -> ProfileReport:
    """This machine's profile as a report; a corrupt file is a ``ProfileError`` naming it."""
    path = profile_path()
    profile, notices = read_profile(path)
    auto = {}
    if profile is not None:
        for j in sorted({e.jobs for _, e in profile.entries()}):
            w, _ = profile.choose(j)
            auto[j] = w.key
    return ProfileReport(str(path), os.path.lexists(path), profile, auto, notices)


def clear_profiles() -> list[Path]:
    """Remove every profile file blastune saved in the cache directory (each unlink is atomic);
    nothing else there is touched. Returns the files removed."""
    from blastune.core.files import output_lock

    removed = []
    for p in all_profile_files():
        if _removable(p):
            try:
                with output_lock(p, "profile", wait=LOCK_WAIT_S):  # not under a writer's feet
                    p.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise ProfileError(f"cannot remove {p}: {exc.strerror or exc}") from None
            removed.append(p)
    return removed


def not_profiles() -> list[Path]:
    """Entries named like a profile that ``clear_profiles`` leaves (a directory, a FIFO...)."""
    return [p for p in all_profile_files() if not _removable(p)]
