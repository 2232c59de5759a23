"""Files blastune writes: one rule for every output (results, CSV, plots, reports, scripts, profile).

* A file the user saved is never replaced without ``--force`` (``check_output``).
* A regular file is written atomically: a temporary file beside it, fsync, rename, fsync of the
  directory. A crash, a full disk or a reader sees the old file or the new one, never half of one.
* An existing file keeps its permission bits (and owner, when we may); a new one gets 0666 minus the
  umask, as ``open()`` would give it. A symlink is written *through*: its target is replaced, the link
  stays.
* A FIFO, a character device or ``/dev/stdout`` is written straight into (piping CSV into another
  program is a real use) and never replaced; a directory, socket or block device is refused.
* A run that owns an output file for a long time (a sweep saving after every point) holds an
  exclusive lock on it (``output_lock``), so a second writer is refused instead of silently
  interleaving with the first.
Every failure is one ``BlastuneError`` line naming the file and the reason.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from blastune.errors import BlastuneError


class OutputExistsError(BlastuneError):
    """The output file exists and the caller did not allow replacing it."""

    def __init__(self, path, option: str = "--force", resume_option: str | None = None):
        self.path = Path(path)
        how = f"pass {option} to overwrite it" + (f" or {resume_option} to continue it" if resume_option else "")
        super().__init__(f"{path} already exists: {how}")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def current_umask() -> int:
    """The process umask, read without changing it (os.umask would race with other threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


@dataclass(frozen=True)
class OutputTarget:
    """Where bytes for ``path`` really go: ``real`` (symlinks followed) and how (``kind``)."""
    path: Path
    real: Path
    kind: str  # "new" | "regular" | "stream"


def resolve_output(path, what: str = "output") -> OutputTarget:
    """Follow symlinks and classify the destination; refuse what can never be an output."""
    raw = str(path)
    if raw == "":
        raise BlastuneError(f"invalid {what} '': give a file name")
    if raw.endswith(os.sep):
        raise BlastuneError(f"cannot write {what} {raw}: a directory name, not a file name")
    p = Path(raw)
    real = Path(os.path.realpath(p))
    try:  # /dev/stdout -> /proc/self/fd/1 -> 'pipe:[123]': no path, but a stream to write into
        st = os.stat(p)
        if stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode):
            return OutputTarget(p, p, "stream")
    except OSError:
        pass
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return OutputTarget(p, real, "new")
    except OSError as exc:
        raise BlastuneError(f"cannot write {what} {p}: {_reason(exc)}") from None
    if stat.S_ISREG(st.st_mode):
        return OutputTarget(p, real, "regular")
    if stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode):
        return OutputTarget(p, real, "stream")
    if stat.S_ISDIR(st.st_mode):
        raise BlastuneError(f"cannot write {what} {p}: it is a directory")
    kind = "block device" if stat.S_ISBLK(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode) else "special file"
    raise BlastuneError(f"cannot write {what} {p}: it is a {kind}, not a regular file")


def check_output(path, *, force: bool = False, what: str = "output", resume: bool | None = None,
                 option: str = "--force", resume_option: str | None = None) -> OutputTarget:
    """Before any work: may ``path`` be written? Refuse an existing regular file unless ``force`` (or
    ``resume``), and make sure the directory takes new files now, not after minutes of measuring."""
    target = resolve_output(path, what)
    if target.kind == "regular" and not (force or resume):
        raise OutputExistsError(target.path, option, resume_option)
    if target.kind == "stream":
        return target
    parent = target.real.parent
    blocker = next((d for d in (parent, *parent.parents) if d.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise BlastuneError(f"cannot write {what} {target.path}: {blocker} is not a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BlastuneError(f"cannot write {what} {target.path}: {_reason(exc)}") from None
    try:  # access() says yes for root even where no file can be made (read-only mounts, /proc)
        fd, probe = tempfile.mkstemp(prefix=".blastune-probe.", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BlastuneError(f"cannot write {what} {target.path}: {_reason(exc)}") from None
    if len(target.real.name.encode()) > 255:
        raise BlastuneError(f"cannot write {what} {target.path}: file name too long (at most 255 bytes)")
    return target


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- a stop signal waits for a write ---------------------------------------------------------------
# A stop signal (measure/signals.py) raises wherever the main thread happens to be. Inside a write
# that could be just after mkstemp made the temporary file, before anything could remove it, or
# between creating a lock's sidecar and owning it: debris beside the user's file. While the main
# thread writes, locks or unlocks, the handler hands its stop here instead, and it is raised the
# moment that step is done (the file replaced or left as it was).
_WRITING = [0]
_DEFERRED: list = []


def defer_if_writing(action) -> bool:
    """For a signal handler: while the main thread writes a file, keep ``action`` and return True."""
    if _WRITING[0]:
        _DEFERRED.append(action)
        return True
    return False


@contextmanager
def _signals_wait():
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers run only in the main thread: nothing to wait for here
        return
    _WRITING[0] += 1
    try:
        yield
    finally:
        _WRITING[0] -= 1
        if not _WRITING[0]:
            _stop_point()


def _stop_point() -> None:
    """Inside ``_signals_wait`` where nothing is half made: raise a stop that came meanwhile, now."""
    if not _DEFERRED or threading.current_thread() is not threading.main_thread():
        return
    action = _DEFERRED[0]
    _DEFERRED.clear()
    depth, _WRITING[0] = _WRITING[0], 0
    try:
        action()
    finally:
        _WRITING[0] = depth


def write_output(path, data: bytes | str, *, what: str = "output", mode: int | None = None) -> None:
    """Write ``data`` to ``path`` by the rules above (no existence check: see ``check_output``).

    ``mode``: permission bits for a *new* file before the umask (0o755 for a script); an existing
    file keeps its own."""
    target = resolve_output(path, what)
    payload = data.encode() if isinstance(data, str) else bytes(data)
    if target.kind == "stream":  # not deferred: opening a FIFO blocks until a reader comes, Ctrl-C must work
        try:
            with open(target.real, "ab" if stat.S_ISFIFO(os.stat(target.real).st_mode) else "wb") as f:
                f.write(payload)
                f.flush()
        except OSError as exc:
            raise BlastuneError(f"cannot write {what} {target.path}: {_reason(exc)}") from None
        return
    with _signals_wait():
        _replace_regular(target, payload, what, mode)


def _replace_regular(target, payload: bytes, what: str, mode: int | None) -> None:
    real = target.real
    old = None
    if target.kind == "regular":
        old = os.stat(real)
        bits = stat.S_IMODE(old.st_mode)
    else:
        bits = (0o666 if mode is None else mode) & ~current_umask()
    # keep the temporary name within NAME_MAX even for a 255-byte target name
    prefix = "." + real.name[:80] + "."
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=real.parent)
    except OSError as exc:
        raise BlastuneError(f"cannot write {what} {target.path}: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), bits)
            if old is not None and (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
                try:
                    os.fchown(f.fileno(), old.st_uid, old.st_gid)
                except OSError:
                    pass  # not ours to give away: the mode is kept, the owner becomes us
        os.replace(tmp, real)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise BlastuneError(f"cannot write {what} {target.path}: {_reason(exc)}") from None
        raise
    _fsync_dir(real.parent)


def save_output(path, data: bytes | str, *, force: bool = False, what: str = "output",
                option: str = "--force", mode: int | None = None) -> None:
    """``check_output`` then ``write_output``: the whole rule for a file written once."""
    check_output(path, force=force, what=what, option=option)
    write_output(path, data, what=what, mode=mode)


@contextmanager
def output_lock(path, what: str = "output", wait: float = 0.0):
    """Hold an exclusive lock on ``path`` for as long as a run owns it; refuse a second owner.

    ``wait``: seconds to wait for another owner to finish first (a short read-modify-write, such as
    a profile update, waits; a run that owns a file for minutes refuses at once).

    The lock is ``flock`` on a sidecar ``.NAME.lock`` beside the real file (the results file itself
    is replaced by every atomic write, so a lock on it would not outlive the first save). The sidecar
    is removed on release; a waiter that locked a sidecar already unlinked retries, so two owners can
    never both hold it. Streams (FIFOs, devices) need no lock.
    """
    target = resolve_output(path, what)
    if target.kind == "stream":
        yield
        return
    lock_path = target.real.parent / f".{target.real.name[:200]}.lock"
    # a stop while the sidecar is made and locked waits until the try below owns it (no stray sidecar)
    waiting = ExitStack()
    waiting.enter_context(_signals_wait())
    try:
        fd = _lock_sidecar(lock_path, target, what, wait)
    except BaseException:
        waiting.close()
        raise
    try:
        waiting.close()  # a stop that came meanwhile is raised here, and the finally releases the lock
        try:  # the pid only names the holder in the refusal; a full disk must not fail the run here
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass
        yield
    finally:
        with _signals_wait():
            try:
                os.unlink(lock_path)
            except OSError:
                pass
            os.close(fd)


def _lock_sidecar(lock_path: Path, target, what: str, wait: float) -> int:
    deadline = time.monotonic() + wait
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise BlastuneError(f"cannot lock {what} {target.path}: {_reason(exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = ""
            try:
                pid = os.pread(fd, 32, 0).decode().strip()
                holder = f" (pid {pid})" if pid.isdigit() else ""
            except OSError:
                pass
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES) and time.monotonic() < deadline:
                _stop_point()  # waiting for another writer holds nothing: Ctrl-C works here
                time.sleep(0.005)
                _stop_point()
                continue
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise BlastuneError(f"{target.path} is being written by another blastune run{holder}: "
                                    f"wait for it to finish or choose another file") from None
            raise BlastuneError(f"cannot lock {what} {target.path}: {_reason(exc)}") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous owner removed this sidecar as we opened it: take a fresh one
    return fd


# --- the 0.1.0 helpers, kept as thin wrappers over the rule above -------------------------------

def atomic_write_text(path: str | Path, text: str, mode: int | None = None, make_parents: bool = True) -> None:
    """Write ``text`` by the output rule (atomic, keeps an existing file's mode, umask for a new one)."""
    if make_parents:
        real = Path(os.path.realpath(path))
        try:
            real.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BlastuneError(f"cannot write {path}: {_reason(exc)}") from None
    write_output(path, text, mode=mode)


def atomic_write_json(path: str | Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def cache_dir() -> Path:
    """Per-user cache for saved profiles: $XDG_CACHE_HOME/blastune, or platformdirs' choice.

    A relative $XDG_CACHE_HOME is ignored, as the XDG Base Directory spec says ("all paths set in
    these environment variables must be absolute ... consider the path invalid and ignore it"): the
    cache would move with the working directory. The spec's default, ~/.cache, is used then
    (platformdirs would take the relative value)."""
    base = os.environ.get("XDG_CACHE_HOME")
    if base and os.path.isabs(base):
        return Path(base) / "blastune"
    if base:
        return Path.home() / ".cache" / "blastune"
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("blastune"))
    except ImportError:
        return Path.home() / ".cache" / "blastune"
