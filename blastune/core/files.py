"""Files blastune writes: one rule for every output (results, CSV, plots, reports, scripts,
profile).

* A file the user saved is never replaced without ``--force`` (``check_output``).
* A regular file is written atomically: a temporary file beside it, fsync, rename, fsync of the
  directory. A crash, a full disk or a reader sees the old file or the new one, never half of one.
* An existing file keeps its permission bits (and owner, when we may); a new one gets 0666 minus the
  umask, as ``open()`` would give it. A symlink is written *through*: its target is replaced, the
  link stays.
* A FIFO, a character device or ``/dev/stdout`` is written straight into (piping CSV into another
  program is a real use) and never replaced; a directory, socket or block device is refused.
* Every write of a regular file, and a run that owns an output file for a long time (a sweep saving
  after every point), holds an exclusive lock on it (``output_lock``): a file another run owns is
  refused, ``--force`` or not. The lock is a sidecar ``.NAME.lock`` *and* the file itself (each
  saved version is locked before it is renamed into place), so deleting the sidecar does not let a
  second run in.
* A FIFO is opened without blocking: no reader within ``FIFO_READER_WAIT_S`` is one line, not a
  hang.
  A file rewritten many times (a sweep's ``--out``) must be a regular file (``rewritten=True``).
* An output may not be one of the command's inputs, nor another of its outputs (``check_distinct``).
* A save that fails (a full disk) keeps the measurement in a fallback file (``keep_safe``).
* A document read back is at most ``MAX_DOCUMENT_BYTES`` (``read_capped``).
Every failure is one ``BlastuneError`` line naming the file and the reason.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path

from blastune.errors import BlastuneError

# Seconds a write into a FIFO waits for a program to open it for reading (polled, so a signal ends
# the wait at once); then it gives up in one line instead of blocking for ever.
FIFO_READER_WAIT_S = 10.0
# The largest document a reader accepts: about 10,000 sweep points at the maximum 1,000 repeats each
# (blastune's own files are far smaller); `compare /dev/zero` stops here, not reading for ever.
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024


class OutputExistsError(BlastuneError):
    """The output file exists and the caller did not allow replacing it."""

    def __init__(self, path, option: str = "--force", resume_option: str | None = None):
        self.path = Path(path)
        how = f"pass {option} to overwrite it" + (
            f" or {resume_option} to continue it" if resume_option else ""
        )
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
    # /dev/stdout -> /proc/self/fd/1 -> 'pipe:[123]': no path, but a stream to write into
    if stat_kind(p) == "stream":
        return OutputTarget(p, p, "stream")
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
    kind = (
        "block device"
        if stat.S_ISBLK(st.st_mode)
        else "socket"
        if stat.S_ISSOCK(st.st_mode)
        else "special file"
    )
    raise BlastuneError(f"cannot write {what} {p}: it is a {kind}, not a regular file")


def check_output(
    path,
    *,
    force: bool = False,
    what: str = "output",
    resume: bool | None = None,
    option: str = "--force",
    resume_option: str | None = None,
    rewritten: bool = False,
) -> OutputTarget:
    """Before any work: may ``path`` be written? Refuse an existing regular file unless ``force``
    (or ``resume``), a file another run owns (whatever ``force`` says), and make sure the directory
    takes new files now, not after minutes of measuring.

    ``rewritten``: the file is written again and again (a sweep saves after every point), so only a
    regular file will do -- a FIFO or /dev/stdout would get one document after another."""
    target = resolve_output(path, what)
    if target.kind == "stream":
        if rewritten:
            raise BlastuneError(
                f"cannot write {what} {target.path}: it is rewritten after every "
                "point, so it must be a regular file, not a FIFO or device (--json "
                "prints the document once on stdout)"
            )
        return target
    if target.kind == "regular" and not (force or resume):
        raise OutputExistsError(target.path, option, resume_option)
    _refuse_if_owned(target)
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
        raise BlastuneError(
            f"cannot write {what} {target.path}: file name too long (at most 255 bytes)"
        )
    return target


def _same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_distinct(outputs, inputs=()) -> None:
    """One rule for every command: no output may be one of its inputs (it would replace what is
    being read: ``plot in.svg -o in.svg``), nor another of its outputs (the later write would
    replace the earlier one). ``outputs``, ``inputs``: (option or role, path); None is skipped."""
    outs = [(name, q) for name, q in outputs if q is not None]
    for i, (name, q) in enumerate(outs):
        clash = next((other for other, r in outs[:i] if _same_file(q, r)), None)
        if clash:
            raise BlastuneError(
                f"{clash} and {name} name the same file {q}: give each its own file"
            )
        if stat_kind(q) == "stream":
            continue  # /dev/stdout or a FIFO: written into, nothing read back from it is replaced
        source = next((r for _, r in inputs if r is not None and _same_file(q, r)), None)
        if source is not None:
            raise BlastuneError(
                f"{name} {q} is also an input ({source}): writing it would replace "
                "what is being read; choose another file"
            )


def stat_kind(path) -> str:
    """ "stream" for a FIFO or character device (incl. /dev/stdout), else "file"."""
    try:
        st = os.stat(path)
    except OSError:
        return "file"
    return "stream" if stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode) else "file"


def refuse_stdout_with_json(path, option: str) -> None:
    """With ``--json`` stdout carries one document: an output that is stdout would add another."""
    if path is None:
        return
    try:
        a, b = os.stat(path), os.fstat(1)
    except (OSError, ValueError):
        return
    if os.path.samestat(a, b):
        raise BlastuneError(
            f"{option} {path} is stdout, where --json prints the document too: "
            f"give {option} a file, or leave --json out"
        )


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


# --- a stop signal waits for a write --------------------------------------------------------------
# A stop signal (measure/signals.py) raises wherever the main thread happens to be. Inside a write
# that could be just after mkstemp made the temporary file, before anything could remove it, or
# between creating a lock's sidecar and owning it: debris beside the user's file. While the main
# thread writes, locks or unlocks, the handler hands its stop here instead, and it is raised the
# moment that step is done (the file replaced or left as it was).
_WRITING = [0]
_DEFERRED: list = []


def defer_if_writing(action) -> bool:
    """For a signal handler: while the main thread writes a file, keep ``action`` and return
    True."""
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
    """Inside ``_signals_wait`` where nothing is half made: raise a stop that came meanwhile,
    now."""
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

    A regular file is written under its lock: the one this run holds (``output_lock``), else taken
    for the write, so a file another run owns is refused rather than replaced.
    ``mode``: permission bits for a *new* file before the umask (0o755 for a script); an existing
    file keeps its own."""
    target = resolve_output(path, what)
    payload = data.encode() if isinstance(data, str) else bytes(data)
    if target.kind == "stream":  # not deferred: the wait for a FIFO's reader must end on Ctrl-C
        _write_stream(target, payload, what)
        return
    # the lock this run holds (maybe in another thread), else one taken for this write
    with nullcontext() if target.real in _HELD else output_lock(path, what), _signals_wait():
        held = _HELD[target.real]
        held.verify(target, what)
        _replace_regular(target, payload, what, mode, held)


def _write_stream(target, payload: bytes, what: str) -> None:
    """Into a FIFO or device. A FIFO is opened without blocking (a blocking open waits for ever
    for a reader that may never come): polled until a reader is there, ``FIFO_READER_WAIT_S``."""
    try:
        fifo = stat.S_ISFIFO(os.stat(target.real).st_mode)
        if fifo:
            fd = _open_fifo(target, what)
        else:
            fd = os.open(target.real, os.O_WRONLY | os.O_CLOEXEC)
        try:
            view = memoryview(payload)
            while view:  # blocking writes: a signal interrupts them (the handler raises)
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    except OSError as exc:
        raise BlastuneError(f"cannot write {what} {target.path}: {_reason(exc)}") from None


def _open_fifo(target, what: str) -> int:
    deadline = time.monotonic() + FIFO_READER_WAIT_S
    while True:
        try:
            fd = os.open(target.real, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: nobody has the FIFO open for reading (yet)
                raise
            if time.monotonic() >= deadline:
                raise BlastuneError(
                    f"cannot write {what} {target.path}: no program is reading "
                    f"the FIFO (waited {FIFO_READER_WAIT_S:g} s for one)"
                ) from None
            time.sleep(0.05)
            continue
        os.set_blocking(fd, True)  # the reader is there: from now on it paces the writes
        return fd


def _replace_regular(target, payload: bytes, what: str, mode: int | None, held=None) -> None:
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
    _SCRATCH.add(tmp)
    file_fd = None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), bits)
            if old is not None and (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
                # not ours to give away: the mode is kept, the owner becomes us
                with suppress(OSError):
                    os.fchown(f.fileno(), old.st_uid, old.st_gid)
            if held is not None:  # the new version is locked before anyone can see it
                file_fd = _flock_or_none(os.dup(f.fileno()))
        os.replace(tmp, real)
    except BaseException as exc:
        if file_fd is not None:
            os.close(file_fd)
        with suppress(OSError):
            os.unlink(tmp)
        _SCRATCH.discard(tmp)
        if isinstance(exc, OSError):
            raise BlastuneError(f"cannot write {what} {target.path}: {_reason(exc)}") from None
        raise
    _SCRATCH.discard(tmp)
    if held is not None:
        held.hold_file(file_fd, real)
    _fsync_dir(real.parent)


def save_output(
    path,
    data: bytes | str,
    *,
    force: bool = False,
    what: str = "output",
    option: str = "--force",
    mode: int | None = None,
) -> None:
    """``check_output`` then ``write_output``: the whole rule for a file written once."""
    check_output(path, force=force, what=what, option=option)
    write_output(path, data, what=what, mode=mode)


# --- locks ----------------------------------------------------------------------------------------
# _HELD: the outputs this process owns (real path -> _Held); write_output writes them under it.
# _SCRATCH: temporary files being written; a run ended at once by a second signal removes them.
_HELD: dict = {}
_SCRATCH: set = set()


class _OwnedElsewhere(Exception):
    pass


def _busy(exc: OSError) -> bool:
    return exc.errno in (errno.EWOULDBLOCK, errno.EACCES)


def _flock_or_none(fd: int) -> int | None:
    """``fd`` exclusively flocked, or None (closed) where this file system cannot lock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except OSError:
        os.close(fd)
        return None


def _lock_existing(path: Path, sidecar: bool = False) -> int | None:
    """Lock a file that may exist (the output file outlives a deleted sidecar): its descriptor, or
    None if there is none yet or the file system cannot lock it; ``_OwnedElsewhere`` if another run
    holds it (with the holder's pid, for a ``sidecar``)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _holder(fd) if sidecar else ""
        os.close(fd)
        if _busy(exc):
            raise _OwnedElsewhere(holder) from None
        return None
    return fd


def _identity(path) -> tuple | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class _Held:
    """A lock this process holds: the sidecar's descriptor, the file's own (each new version), and
    the identity of the file as this run last left it (None: no file)."""

    def __init__(self, lock_path: Path, fd: int, file_fd: int | None, real: Path):
        self.lock_path, self.fd, self.file_fd = lock_path, fd, file_fd
        self.thread = threading.get_ident()
        self.expect = _identity(real)

    def hold_file(self, fd: int | None, real: Path | None = None) -> None:
        old, self.file_fd = self.file_fd, fd
        if old is not None:
            os.close(old)
        if real is not None:
            self.expect = _identity(real)

    def verify(self, target, what: str) -> None:
        """Before a write: is the file still as this run left it, the sidecar on disk still ours?
        Someone may have deleted the sidecar and another run taken a new one, or already saved: then
        this run must not replace that run's file."""
        if _identity(target.real) != self.expect:
            raise BlastuneError(
                f"{target.path} changed while this run held it (another program "
                "wrote it): not replacing it"
            )
        if self.owns_sidecar() is not False:
            return
        try:  # removed behind our back: take it again, unless another run already has
            fd = _lock_sidecar(self.lock_path, target, what, 0.0)
        except BlastuneError:
            raise BlastuneError(
                f"{target.path} was taken by another blastune run (the lock file "
                f"{self.lock_path.name} was removed while this run held it): "
                "not replacing it"
            ) from None
        os.close(self.fd)
        self.fd = fd

    def owns_sidecar(self) -> bool | None:
        """Is the sidecar on disk still the one this run locked? None when that cannot be told."""
        try:
            on_disk, mine = os.stat(self.lock_path), os.fstat(self.fd)
        except FileNotFoundError:
            return False
        except OSError:
            return None
        return os.path.samestat(on_disk, mine)

    def remove_sidecar(self) -> None:
        """Only our own sidecar: another run's stays."""
        with suppress(OSError):
            if self.owns_sidecar():
                os.unlink(self.lock_path)

    def release(self) -> None:
        self.hold_file(None)  # the file first: a run that takes the sidecar next finds it free
        self.remove_sidecar()
        os.close(self.fd)


def _sidecar_path(real: Path) -> Path:
    return real.parent / f".{real.name[:200]}.lock"


def _owned(target, holder: str = "") -> BlastuneError:
    return BlastuneError(
        f"{target.path} is being written by another blastune run{holder}: wait for it to finish "
        "or choose another file"
    )


def _holder(sidecar_fd: int) -> str:
    """' (pid 123)': the run that holds a sidecar, as it wrote itself there; '' when unknown."""
    try:
        pid = os.pread(sidecar_fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def _refuse_if_owned(target) -> None:
    """Refuse now, before any work, a file another run holds (its sidecar or the file itself)."""
    if target.real in _HELD:
        return
    for p in (_sidecar_path(target.real), target.real):
        try:
            fd = _lock_existing(p, sidecar=p != target.real)
        except _OwnedElsewhere as exc:
            raise _owned(target, str(exc)) from None
        if fd is not None:
            os.close(fd)


@contextmanager
def output_lock(path, what: str = "output", wait: float = 0.0):
    """Hold an exclusive lock on ``path`` for as long as a run owns it; refuse a second owner.

    ``wait``: seconds to wait for another owner to finish first (a short read-modify-write, such as
    a profile update, waits; a run that owns a file for minutes refuses at once).

    Two locks, both ``flock``: a sidecar ``.NAME.lock`` beside the real file (the file itself is
    replaced by every atomic write, and may not exist yet), and the file itself -- each version is
    locked before it is renamed into place, so a deleted sidecar does not let a second owner in.
    The sidecar is removed on release; a waiter that locked a sidecar already unlinked retries, so
    two owners can never both hold it. Streams (FIFOs, devices) need no lock. Taking a lock this
    thread already holds is a no-op.
    """
    target = resolve_output(path, what)
    held = _HELD.get(target.real)
    if target.kind == "stream" or (held is not None and held.thread == threading.get_ident()):
        yield
        return
    lock_path = _sidecar_path(target.real)
    deadline = time.monotonic() + wait
    # a stop while the sidecar is made and locked waits until the try below owns it (no stray
    # sidecar)
    waiting = ExitStack()
    waiting.enter_context(_signals_wait())
    try:
        while True:
            fd = _lock_sidecar(lock_path, target, what, max(0.0, deadline - time.monotonic()))
            try:
                file_fd = _lock_existing(target.real)
                break
            except _OwnedElsewhere:
                held = _Held(lock_path, fd, None, target.real)
                held.release()
                if time.monotonic() < deadline:
                    _stop_point()
                    time.sleep(0.005)
                    continue
                raise _owned(target) from None
    except BaseException:
        waiting.close()
        raise
    held = _Held(lock_path, fd, file_fd, target.real)
    _HELD[target.real] = held
    try:
        # a stop that came meanwhile is raised here, and the finally releases the lock
        waiting.close()
        # the pid only names the holder in the refusal; a full disk must not fail the run here
        with suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with _signals_wait():
            if _HELD.get(target.real) is held:
                del _HELD[target.real]
            held.release()


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
            holder = _holder(fd)
            os.close(fd)
            if _busy(exc) and time.monotonic() < deadline:
                _stop_point()  # waiting for another writer holds nothing: Ctrl-C works here
                time.sleep(0.005)
                _stop_point()
                continue
            if _busy(exc):
                raise _owned(target, holder) from None
            raise BlastuneError(f"cannot lock {what} {target.path}: {_reason(exc)}") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous owner removed this sidecar as we opened it: take a fresh one
    return fd


def abandon_writes() -> None:
    """For a run ended at once (a second signal): remove the temporary file of a write in progress
    and this process's lock sidecars; the user's files stay as last saved."""
    for tmp in list(_SCRATCH):
        with suppress(OSError):
            os.unlink(tmp)
    for held in list(_HELD.values()):
        held.remove_sidecar()


# --- keeping a measurement a save could not write -------------------------------------------------


class SaveFailed(BlastuneError):
    """A results file could not be written; ``fallback`` is where the document was kept instead (or
    None), ``result`` the measurement (for the caller to show)."""

    def __init__(self, message: str, fallback: Path | None = None, result=None):
        super().__init__(message)
        self.fallback = fallback
        self.result = result


def keep_safe(path, text: str, previous: Path | None = None) -> Path | None:
    """Write ``text`` to a new file in a temporary directory ($TMPDIR, /tmp, /var/tmp, /dev/shm, the
    home directory) -- a fallback for a save that failed -- and return its path, or None if none
    took it. ``previous``: the fallback written before for the same run, replaced in place (its
    name was already given to the user)."""
    name = Path(str(path)).name[:80] or "results.json"
    stem, suffix = Path(name).stem, Path(name).suffix or ".json"
    dirs = [Path(d) for d in (tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm", Path.home())]
    if previous is not None:
        dirs.insert(0, previous.parent)
    for d in dict.fromkeys(dirs):
        try:
            fd, tmp = tempfile.mkstemp(prefix=f"blastune-{stem}.", suffix=suffix, dir=d)
        except OSError:
            continue
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(text.encode())
                f.flush()
                os.fsync(f.fileno())
            if previous is not None and Path(tmp).parent == previous.parent:
                os.replace(tmp, previous)
                return previous
        except OSError:
            with suppress(OSError):
                os.unlink(tmp)
            continue
        return Path(tmp)
    return previous


# --- reading a document back ----------------------------------------------------------------------


def read_capped(path, limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """The bytes of ``path``, refused in one line above ``limit`` (``/dev/zero`` has no end).
    OSError as ``open`` raises it (the caller words it)."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise BlastuneError(
            f"{path}: larger than {limit // (1024 * 1024)} MiB, not a blastune "
            "results file (blastune refuses documents above that size)"
        )
    return data


# --- the 0.1.0 helpers, kept as thin wrappers over the rule above -------------------------------


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` by the output rule (atomic, keeps an existing file's mode, umask for a new
    one), making the directories it needs."""
    try:
        Path(os.path.realpath(path)).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BlastuneError(f"cannot write {path}: {_reason(exc)}") from None
    write_output(path, text)


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
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("blastune"))
