"""``blastune.processes()``: every process on this machine with a BLAS or OpenMP runtime mapped,
and the BLAS threads they add up to against the usable cores.

Another process's libraries cannot be asked anything (no dlsym across processes), so they are
known by their file paths in /proc/PID/maps; its thread settings come from /proc/PID/environ where
this user may read it, its OS threads from /proc/PID/status, its CPU use from two /proc/PID/stat
samples. Linux only (psutil's memory maps are slower and missing on macOS).
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass, field

from blastune.core.counts import first_positive_int
from blastune.errors import BlastuneError
from blastune.libraries import OPENMP_FAMILIES

PS_SCHEMA = "blastune.ps/1"
BUSY_PERCENT = 20.0  # CPU % above which a process counts as computing now
MAX_INTERVAL = 3600.0  # seconds; a CPU sample (or --watch period) longer than an hour is a typo

# (vendor, regex on the mapped file's real path). Order matters: the first match names the file.
# Debian's alternatives all call the file libblas.so.3; the directory tells the build.
# The BLAS patterns are this module's own: most BLAS families are known in-process by their marker
# symbols, which another process's files cannot be asked for. OpenMP runtimes are known by their
# path alone, so their families' patterns serve here as they are.
PATH_PATTERNS = (
    ("openblas", r"lib(scipy_)?openblas[^/]*\.so|/openblas[^/]*/lib(c?blas|lapack)[^/]*\.so"),
    ("mkl", r"libmkl_(rt|core)[^/]*\.so"),
    ("blis", r"libblis[^/]*\.so|/blis[^/]*/lib(c?blas)[^/]*\.so"),
    ("atlas", r"lib[st]?atlas[^/]*\.so|/atlas/lib(c?blas|lapack)[^/]*\.so"),
    ("flexiblas", r"libflexiblas[^/]*\.so"),
    ("accelerate", r"(Accelerate|vecLib)\.framework"),
    ("reference", r"/blas/libc?blas[^/]*\.so|librefblas[^/]*\.so"),
    *((fam.name, fam.path_pattern) for fam in OPENMP_FAMILIES),
    ("blas", r"/libc?blas[^/]*\.so"),  # some BLAS, vendor not told by the path
)
_COMPILED = tuple((v, re.compile(p)) for v, p in PATH_PATTERNS)
OPENMP_VENDORS = tuple(fam.name for fam in OPENMP_FAMILIES)
SINGLE_THREADED = ("reference", "atlas")  # serial builds: a pool of one

# Which variable each vendor reads for its pool size, in the order it reads them.
VENDOR_VARS = {
    "openblas": ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"),
    "mkl": ("MKL_NUM_THREADS", "OMP_NUM_THREADS"),
    "blis": ("BLIS_NUM_THREADS", "OMP_NUM_THREADS"),
    "flexiblas": ("FLEXIBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"),
    "accelerate": ("VECLIB_MAXIMUM_THREADS",),
    "blas": ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"),
    **{vendor: ("OMP_NUM_THREADS",) for vendor in OPENMP_VENDORS},
}
_ENV_SHOWN = frozenset(var for names in VENDOR_VARS.values() for var in names)  # read from /proc/PID/environ


def vendor_of_path(path: str) -> str | None:
    for vendor, rx in _COMPILED:
        if rx.search(path):
            return vendor
    return None


@dataclass
class BlasProcess:
    pid: int
    user: str | None
    command: str
    vendors: list[str]            # BLAS and OpenMP families mapped
    libraries: list[str]          # their files
    threads: int                  # OS threads now (/proc/PID/status)
    cpu_percent: float | None     # over the sampling interval; 100 = one core busy
    affinity: int | None          # CPUs it may run on
    env: dict[str, str] | None    # its thread variables; None when /proc/PID/environ is not readable
    blas_threads: int             # the largest pool one BLAS call in it may use
    blas_threads_basis: str

    def to_dict(self):
        return asdict(self)

    @property
    def busy(self) -> bool:
        return (self.cpu_percent or 0.0) >= BUSY_PERCENT


@dataclass
class Census:
    schema: str
    usable_cores: int
    usable_basis: str
    processes: list[BlasProcess]
    total_blas_threads: int       # over every process listed
    busy_blas_threads: int        # over the processes computing now
    verdict: str                  # ok | at-risk | oversubscribed
    message: str
    interval: float
    unreadable: int = 0           # processes whose maps this user may not read
    notes: list[str] = field(default_factory=list)

    def to_dict(self):
        d = asdict(self)
        d["processes"] = [p.to_dict() for p in self.processes]
        return d

    def find(self, pid: int) -> BlasProcess | None:
        return next((p for p in self.processes if p.pid == pid), None)


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return None


def _mapped_libraries(pid: int) -> list[tuple[str, str]] | None:
    """(vendor, path) for each BLAS/OpenMP file mapped into ``pid``; None when not readable."""
    text = _read(f"/proc/{pid}/maps")
    if text is None:
        return None
    seen: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6 or ".so" not in parts[5] and ".framework" not in parts[5]:
            continue
        path = parts[5].strip()
        if path in seen:
            continue
        vendor = vendor_of_path(path)
        if vendor:
            seen[path] = vendor
    return [(v, p) for p, v in seen.items()]


def _environ(pid: int) -> dict[str, str] | None:
    text = _read(f"/proc/{pid}/environ")
    if text is None:
        return None
    out = {}
    for item in text.split("\0"):
        key, sep, value = item.partition("=")
        if sep and key in _ENV_SHOWN:
            out[key] = value
    return out


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in (_read(f"/proc/{pid}/status") or "").splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _cpu_ticks(pid: int) -> tuple[int, int] | None:
    """(utime + stime, start time) in clock ticks; None once the process is gone.

    The start time tells a process from a newcomer that got its pid while we slept.
    """
    text = _read(f"/proc/{pid}/stat")
    if not text:
        return None
    # the command (field 2) may hold spaces and parentheses: split after the last ')'
    fields = text[text.rfind(")") + 2:].split()
    try:
        return int(fields[11]) + int(fields[12]), int(fields[19])
    except (IndexError, ValueError):
        return None


def _command(pid: int) -> str:
    raw = _read(f"/proc/{pid}/cmdline") or ""
    cmd = " ".join(a for a in raw.split("\0") if a)
    return cmd or f"[{(_read(f'/proc/{pid}/comm') or '?').strip()}]"


def _count_cpus(cpu_list: str) -> int | None:
    n = 0
    for part in cpu_list.split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            n += int(hi or lo) - int(lo) + 1
        except ValueError:
            return None
    return n or None


def _user(uid_field: str) -> str | None:
    try:
        import pwd

        return pwd.getpwuid(int(uid_field.split()[0])).pw_name
    except (ImportError, KeyError, ValueError, IndexError):
        return None


def _openmp_build(vendor: str, paths: list[str]) -> bool:
    """OpenBLAS built with OpenMP follows OMP_NUM_THREADS only (Debian: openblas-openmp/, Fedora: libopenblaso)."""
    return vendor == "openblas" and any(re.search(r"openblas-openmp/|libopenblaso[.-]", p) for p in paths)


def _pool_size(vendors: list[str], env: dict[str, str] | None, affinity: int | None,
               usable: int, paths: list[str] = ()) -> tuple[int, str]:
    """The largest BLAS pool the process may run: per vendor, its variable, else its default.

    An OpenMP runtime counts only in a process with no BLAS mapped: beside a BLAS, the BLAS
    decides how many of its threads are used (BLIS over libgomp stays at 1 thread by default)."""
    cores = affinity or usable
    blas = [v for v in vendors if v not in OPENMP_VENDORS]
    best, basis = 0, "no BLAS pool"
    for vendor in blas or vendors:
        names = ("OMP_NUM_THREADS",) if _openmp_build(vendor, paths) else VENDOR_VARS.get(vendor, ("OMP_NUM_THREADS",))
        if vendor in SINGLE_THREADED:
            n, why = 1, f"{vendor}: serial"
        elif vendor == "blis":
            v, var = first_positive_int(env, names)
            n, why = (v, f"blis: {var}") if v else (1, "blis: default 1 thread")
        else:
            v, var = first_positive_int(env, names)
            if v:
                n, why = v, f"{vendor}: {var}={v}"
            elif env is None:
                n, why = cores, f"{vendor}: environment unreadable, assumed one thread per CPU ({cores})"
            else:
                n, why = cores, f"{vendor}: default, one thread per CPU it may use ({cores})"
        if n > best:
            best, basis = n, why
    return best, basis


def _pids() -> list[int]:
    try:
        return sorted(int(d) for d in os.listdir("/proc") if d.isdigit())
    except OSError:
        raise BlastuneError("blastune ps needs Linux's /proc: not available on this system") from None


def processes(interval: float = 0.5, include_self: bool = False) -> Census:
    """Every visible process with a BLAS or OpenMP runtime mapped, and a verdict on the total.

    ``interval``: seconds between the two CPU-time samples (0 skips CPU %).
    """
    from blastune.facts.cpu import cgroup_quota, usable_cores

    if not 0 <= interval <= MAX_INTERVAL:  # also refuses nan and inf
        raise BlastuneError(f"invalid interval {interval:g}: must be from 0 to {MAX_INTERVAL:g} seconds")
    # The machine's cores (capped by a container's CPU quota), not this process's own affinity mask:
    # a `taskset -c 0 blastune ps` still looks at processes running on every CPU.
    usable, basis = usable_cores(list(range(os.cpu_count() or 1)), cgroup_quota())
    me = os.getpid()
    found, unreadable = [], 0
    for pid in _pids():
        if pid == me and not include_self:
            continue
        libs = _mapped_libraries(pid)
        if libs is None:
            if os.path.exists(f"/proc/{pid}"):
                unreadable += 1
            continue
        t0 = _cpu_ticks(pid) if libs else None
        if t0 is not None:  # None: it mapped a BLAS but exited since
            found.append((pid, libs, t0))
    start = time.monotonic()
    if interval > 0 and found:
        time.sleep(interval)
    elapsed = time.monotonic() - start
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out = []
    for pid, libs, t0 in found:
        status = _status(pid)
        t1 = _cpu_ticks(pid)
        # gone meanwhile: exited (a zombie until reaped), or its pid already reused by a newcomer
        if not status or status.get("State", "").startswith("Z") or t1 is None or t1[1] != t0[1]:
            continue
        pct = None
        if interval > 0 and elapsed > 0:
            pct = round(100.0 * (t1[0] - t0[0]) / hz / elapsed, 1)
        vendors = sorted({v for v, _ in libs}, key=lambda v: (v in OPENMP_VENDORS, v))
        env = _environ(pid)
        aff = _count_cpus(status.get("Cpus_allowed_list", ""))
        pool, why = _pool_size(vendors, env, aff, usable, [p for _, p in libs])
        out.append(BlasProcess(
            pid=pid, user=_user(status.get("Uid", "")), command=_command(pid), vendors=vendors,
            libraries=sorted(p for _, p in libs), threads=int(status.get("Threads", "0") or 0),
            cpu_percent=pct, affinity=aff, env=env, blas_threads=pool, blas_threads_basis=why))
    return _census(out, usable, basis, interval, unreadable)


def _census(procs: list[BlasProcess], usable: int, basis: str, interval: float, unreadable: int) -> Census:
    total = sum(p.blas_threads for p in procs)
    busy = [p for p in procs if p.busy]
    busy_total = sum(p.blas_threads for p in busy)
    if interval > 0 and busy_total > usable:
        verdict = "oversubscribed"
        message = (f"{len(busy)} busy processes may run {busy_total} BLAS threads on {usable} usable cores: "
                   f"limit each to {max(1, usable // len(busy))} (blastune env --jobs {len(busy)})")
    elif total > usable:
        verdict = "at-risk"
        message = (f"{len(procs)} processes hold BLAS pools of {total} threads in all on {usable} usable cores; "
                   "fine while they take turns, oversubscribed when they compute at once")
    else:
        verdict = "ok"
        message = f"{total} BLAS threads in {len(procs)} processes fit {usable} usable cores"
    notes = []
    if unreadable:
        notes.append(f"{unreadable} process{'es' * (unreadable != 1)} could not be inspected (permission denied)")
    return Census(schema=PS_SCHEMA, usable_cores=usable, usable_basis=basis, processes=procs,
                  total_blas_threads=total, busy_blas_threads=busy_total, verdict=verdict, message=message,
                  interval=interval, unreadable=unreadable, notes=notes)
