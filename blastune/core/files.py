"""Files blastune writes: atomically, never silently over a file the user saved."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from blastune.errors import BlastuneError


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


def check_output_path(path, what: str) -> None:
    """Before a long sweep, make sure the file it ends with can be written (one line if not)."""
    import os

    parent = Path(path).resolve().parent
    blocker = next((d for d in (parent, *parent.parents) if d.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise BlastuneError(f"cannot write {what} {path}: {blocker} is not a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BlastuneError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
    if Path(path).is_dir():
        raise BlastuneError(f"cannot write {what} {path}: it is a directory")
    import tempfile

    try:  # access() says yes for root even where no file can be made (/proc): really try
        fd, probe = tempfile.mkstemp(prefix=".blastune-probe.", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BlastuneError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
