"""Saved results: versioned JSON, written atomically, never silently overwritten.

Every file blastune writes carries ``schema`` ("blastune.<kind>/<version>") and a ``fingerprint`` of
the machine and BLAS it was measured on, so later commands (compare, recommend, env --auto) can tell
a result from this machine from a foreign one.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from blastune.errors import BlastuneError


def fingerprint(cpu=None, libraries=None) -> dict:
    """What a measurement depends on: the CPU, the cores we may use, and the BLAS libraries loaded."""
    from blastune.cpu import cpu_info
    from blastune.detect import inventory

    cpu = cpu or cpu_info()
    libs = inventory() if libraries is None else libraries
    fp = {
        "cpu_model": cpu.model,
        "machine": cpu.machine,
        "simd": cpu.simd,
        "usable_cores": cpu.usable_cores,
        "libraries": sorted(f"{lib.vendor} {lib.version or '?'} {lib.threading_layer or '?'}"
                            for lib in libs if lib.api != "openmp"),
    }
    fp["id"] = hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]
    return fp


def atomic_write_text(path: str | Path, text: str, mode: int | None = None, make_parents: bool = True) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename: a crash or a reader sees the
    old file or the new one, never half of one. ``mode``: permission bits for the new file."""
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_json(path: str | Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def check_writable_new(path: str | Path, force: bool = False, resume: bool | None = False) -> None:
    """Refuse to replace a file the user saved unless they said --force (or --resume continues it).

    ``resume=None``: the command has no --resume, so the message does not offer one."""
    path = Path(path)
    if path.is_dir():
        raise BlastuneError(f"{path} is a directory: give a file name for the results")
    if path.exists() and not (force or resume):
        how = "pass --force to overwrite it" + ("" if resume is None else " or --resume to continue it")
        raise BlastuneError(f"{path} already exists: {how}")


def load_results(path: str | Path, kind: str | None = None, major: int | None = None) -> dict:
    """Read a results file back; a missing, corrupt or foreign file is one clear error."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BlastuneError(f"{path}: no such file") from None
    except OSError as exc:
        raise BlastuneError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BlastuneError(f"{path}: not a blastune results file (invalid JSON at line {exc.lineno})") from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(schema, str) or not schema.startswith("blastune."):
        raise BlastuneError(f"{path}: not a blastune results file (no 'schema' field)")
    name, _, version = schema.partition("/")
    if kind is not None and name != f"blastune.{kind}":
        raise BlastuneError(f"{path}: holds {name.removeprefix('blastune.')} results, expected {kind}")
    if major is not None and version.split(".")[0] != str(major):
        raise BlastuneError(f"{path}: schema {schema} is not supported (this blastune reads version {major})")
    return data


def cache_dir() -> Path:
    """Per-user cache for saved profiles: $XDG_CACHE_HOME/blastune, or platformdirs' choice."""
    base = os.environ.get("XDG_CACHE_HOME")
    if base:
        return Path(base) / "blastune"
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("blastune"))
    except ImportError:
        return Path.home() / ".cache" / "blastune"
