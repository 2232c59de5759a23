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

from blastune.errors import BlastuneError
from blastune.facts.cpu import cgroup_quota, physical_cores, read_text as read_proc, usable_cores
from blastune.facts.detect import mapped_files
from blastune.facts.environment import requested_threads
from blastune.facts.schedstat import CONTENDED_WAIT_PCT, Meter, available as schedstat_available
from blastune.facts.topology import parse_cpulist, plural
from blastune.libraries import OPENMP_FAMILIES, Family, Seat, families, family_named

PS_SCHEMA = "blastune.ps/1"
# CPU % (100 = one CPU) above which a process counts as computing now: a judgement of one process,
# which needs at least one busy thread to compute whatever the machine's size (a fifth of a CPU
# leaves out daemons that wake up now and then, and takes in a BLAS loop sharing its CPU with four).
BUSY_PERCENT = 20.0
MAX_INTERVAL = 3600.0  # seconds; a CPU sample (or --watch period) longer than an hour is a typo

# A mapped file whose path names no family but looks like a BLAS: some BLAS, vendor unknown.
UNKNOWN_BLAS = ("blas", r"/libc?blas[^/]*\.so")


def _patterns() -> list[tuple[type[Family] | None, re.Pattern]]:
    """(family, regex on a mapped file's real path), from the registry; the first match names the
    file. Most BLAS families are known in-process by marker symbols, which another process's files
    cannot be asked for: each family's ``ps_pattern`` (or its ``path_pattern``) serves here."""
    out = []
    for fam in families():
        pattern = fam.ps_pattern or fam.path_pattern
        if pattern:
            out.append((fam, re.compile(pattern)))
    out.append((None, re.compile(UNKNOWN_BLAS[1])))
    return out


def _env_shown() -> frozenset[str]:
    """The variables read from /proc/PID/environ: whatever a family's thread rule reads."""
    return frozenset(
        v for fam in families() for v in fam.thread_vars + fam.integer_vars + fam.key_vars
    )


def vendor_of_path(path: str, patterns=None) -> str | None:
    for fam, rx in patterns or _patterns():
        if rx.search(path):
            return fam.name if fam else UNKNOWN_BLAS[0]
    return None


@dataclass
class BlasProcess:
    pid: int
    user: str | None
    command: str
    vendors: list[str]  # BLAS and OpenMP families mapped
    libraries: list[str]  # their files
    threads: int  # OS threads now (/proc/PID/status)
    cpu_percent: float | None  # over the sampling interval; 100 = one core busy
    affinity: int | None  # CPUs it may run on
    env: dict[str, str] | None  # its thread variables; None when /proc/PID/environ is not readable
    blas_threads: int  # the threads one BLAS call in it really runs (the largest pool)
    blas_threads_basis: str
    # Measured over the sampling interval from /proc/PID/task/*/schedstat (None where not measured):
    run_s: float | None = None  # seconds its threads ran on a CPU (summed over threads)
    wait_s: float | None = None  # seconds its threads were runnable but waited for a CPU
    wait_share_pct: float | None = None  # wait / (run + wait): ``wait_share``
    contended: bool | None = None  # computing, and waited more than CONTENDED_WAIT_PCT of the CPU
    # time it wanted (``waited_too_long``)

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
    total_blas_threads: int  # over every process listed
    busy_blas_threads: int  # over the processes computing now
    verdict: str  # ok | at-risk | oversubscribed
    message: str
    interval: float
    unreadable: int = 0  # processes whose maps this user may not read
    # each of them: {"pid", "command" (its comm), "user", "reason"} -- a note must say which
    unreadable_processes: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    measured_by: str | None = None  # "schedstat" (run-queue wait) | "cpu-percent" | None
    contended_processes: int = 0  # processes whose threads waited for a CPU past the threshold
    wait_share_pct: float | None = None  # their wait / (run + wait), all together
    threshold_pct: float = CONTENDED_WAIT_PCT  # % of the CPU time a process wanted (see
    # waited_too_long)

    def to_dict(self):
        return asdict(self)

    def find(self, pid: int) -> BlasProcess | None:
        return next((p for p in self.processes if p.pid == pid), None)


def mapped_libraries(pid: int, patterns=None) -> list[tuple[str, str]] | None:
    """(vendor, path) for each BLAS/OpenMP file mapped into ``pid``; None when not readable."""
    paths = mapped_files(pid)
    if paths is None:
        return None
    libs = [(vendor_of_path(p, patterns), p) for p in paths if ".so" in p or ".framework" in p]
    return [(v, p) for v, p in libs if v]


def _environ(pid: int, shown: frozenset[str]) -> dict[str, str] | None:
    text = read_proc(f"/proc/{pid}/environ")
    if text is None:
        return None
    out = {}
    for item in text.split("\0"):
        key, sep, value = item.partition("=")
        if sep and key in shown:
            out[key] = value
    return out


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in (read_proc(f"/proc/{pid}/status") or "").splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _cpu_ticks(pid: int) -> tuple[int, int] | None:
    """(utime + stime, start time) in clock ticks; None once the process is gone.

    The start time tells a process from a newcomer that got its pid while we slept.
    """
    text = read_proc(f"/proc/{pid}/stat")
    if not text:
        return None
    # the command (field 2) may hold spaces and parentheses: split after the last ')'
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return int(fields[11]) + int(fields[12]), int(fields[19])
    except (IndexError, ValueError):
        return None


def _command(pid: int) -> str:
    raw = read_proc(f"/proc/{pid}/cmdline") or ""
    cmd = " ".join(a for a in raw.split("\0") if a)
    return cmd or f"[{(read_proc(f'/proc/{pid}/comm') or '?').strip()}]"


def _count_cpus(cpu_list: str) -> int | None:
    try:
        return len(parse_cpulist(cpu_list)) or None
    except ValueError:
        return None


def _user(uid_field: str) -> str | None:
    try:
        import pwd

        return pwd.getpwuid(int(uid_field.split()[0])).pw_name
    except (ImportError, KeyError, ValueError, IndexError):
        return None


def _pool_size(
    vendors: list[str], env: dict[str, str] | None, seat: Seat, paths: list[str] = ()
) -> tuple[int, str]:
    """The threads one BLAS call in the process really runs: per family mapped, its own rule
    (``Family.planned_threads``: its variables, its default, its cap); the largest wins.

    An OpenMP runtime counts only in a process with no BLAS mapped: beside a BLAS, the BLAS
    decides how many of its threads are used (BLIS over libgomp stays at 1 thread by default).
    A wrapper (FlexiBLAS) counts only when no backend it may forward to is recognised."""
    fams = [family_named(v) for v in vendors]
    blas = [f for f in fams if f is None or f.api != "openmp"]
    if any(f is not None and not f.wrapper for f in blas):
        blas = [f for f in blas if f is None or not f.wrapper]
    best, basis = 0, "no BLAS pool"
    for fam in blas or fams:
        if fam is None or fam.wrapper:  # a BLAS no family claims: whatever the variables ask
            what = "flexiblas (backend unknown)" if fam else "unknown BLAS"
            v, var = requested_threads(env or {})
            n, why = (
                (v, f"{what}: {var}={v}")
                if v
                else (seat.cpus, f"{what}: assumed one thread per CPU ({seat.cpus})")
            )
        else:
            n, why = fam.planned_threads(env, seat, paths)
        if n > best:
            best, basis = n, why
    return best, basis


def _pids() -> list[int]:
    try:
        return sorted(int(d) for d in os.listdir("/proc") if d.isdigit())
    except OSError:
        raise BlastuneError(
            "blastune ps needs Linux's /proc: not available on this system"
        ) from None


def processes(interval: float = 0.5, include_self: bool = False) -> Census:
    """Every visible process with a BLAS or OpenMP runtime mapped, and a verdict on the total.

    ``interval``: seconds over which each process's CPU use and its threads' run-queue wait
    (schedstat) are measured; 0 skips the measurement and judges by thread counts alone.
    """
    if not 0 <= interval <= MAX_INTERVAL:  # also refuses nan and inf
        raise BlastuneError(
            f"invalid interval {interval:g}: must be from 0 to {MAX_INTERVAL:g} seconds"
        )
    # The machine's cores (capped by a container's CPU quota), not this process's own affinity mask:
    # a `taskset -c 0 blastune ps` still looks at processes running on every CPU.
    usable, basis = usable_cores(list(range(os.cpu_count() or 1)), cgroup_quota())
    physical = physical_cores()
    patterns, shown = _patterns(), _env_shown()
    schedstat = interval > 0 and schedstat_available()
    me = os.getpid()
    found, unreadable, denied = [], 0, []
    for pid in _pids():
        if pid == me and not include_self:
            continue
        libs = mapped_libraries(pid, patterns)
        if libs is None:
            if os.path.exists(f"/proc/{pid}"):
                unreadable += 1
                denied.append(_why_unreadable(pid))
            continue
        t0 = _cpu_ticks(pid) if libs else None
        if t0 is not None:  # None: it mapped a BLAS but exited since
            found.append((pid, libs, t0, Meter.start([pid]) if schedstat else None))
    start = time.monotonic()
    if interval > 0 and found:
        time.sleep(interval)
    elapsed = time.monotonic() - start
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out = []
    for pid, libs, t0, meter in found:
        contention = meter.stop() if meter is not None else None
        status = _status(pid)
        t1 = _cpu_ticks(pid)
        # gone meanwhile: exited (a zombie until reaped), or its pid already reused by a newcomer
        if not status or status.get("State", "").startswith("Z") or t1 is None or t1[1] != t0[1]:
            continue
        pct = None
        if interval > 0 and elapsed > 0:
            pct = round(100.0 * (t1[0] - t0[0]) / hz / elapsed, 1)
        openmp = {f.name for f in OPENMP_FAMILIES}
        vendors = sorted({v for v, _ in libs}, key=lambda v: (v in openmp, v))
        env = _environ(pid, shown)
        aff = _count_cpus(status.get("Cpus_allowed_list", ""))
        seat = Seat(cpus=aff or usable, physical_cores=physical)
        pool, why = _pool_size(vendors, env, seat, [p for _, p in libs])
        proc = BlasProcess(
            pid=pid,
            user=_user(status.get("Uid", "")),
            command=_command(pid),
            vendors=vendors,
            libraries=sorted(p for _, p in libs),
            threads=int(status.get("Threads", "0") or 0),
            cpu_percent=pct,
            affinity=aff,
            env=env,
            blas_threads=pool,
            blas_threads_basis=why,
        )
        if contention is not None:
            proc.run_s, proc.wait_s = round(contention.run_s, 4), round(contention.wait_s, 4)
            proc.wait_share_pct = wait_share(contention.run_s, contention.wait_s)
            proc.contended = waited_too_long(contention.run_s, contention.wait_s, contention.wall_s)
        out.append(proc)
    measured = "schedstat" if schedstat else "cpu-percent" if interval > 0 else None
    return _census(out, usable, basis, interval, unreadable, measured, denied)


def _why_unreadable(pid: int) -> dict:
    """Which process /proc/PID/maps was refused for, and the likely reason (root is refused too
    where it lacks CAP_SYS_PTRACE, as in most containers)."""
    status = _status(pid)
    uid = (status.get("Uid", "").split() or [""])[0]
    try:
        with open(f"/proc/{pid}/maps", "rb"):
            reason = "gone"  # readable now: it exited and the pid was reused
    except OSError as exc:
        reason = (exc.strerror or "not readable").lower()
    if reason == "permission denied":
        if os.geteuid() == 0:
            reason = "permission denied: root without CAP_SYS_PTRACE here (a container?)"
        elif uid and uid != str(os.geteuid()):
            reason = f"permission denied: {_user(uid) or 'uid ' + uid}'s process"
        else:
            reason = "permission denied"
    comm = (read_proc(f"/proc/{pid}/comm") or "?").strip()
    return {"pid": pid, "command": comm, "user": _user(uid) if uid else None, "reason": reason}


def waited_too_long(run_s: float, wait_s: float, interval: float) -> bool:
    """Is a process contended? Its threads waited for a CPU more than ``CONTENDED_WAIT_PCT`` percent
    of the CPU time they wanted (run + wait), while it computed (it wanted ``BUSY_PERCENT`` of a CPU
    or more). A share of its own demand, so the rule is the same for 1 thread on 2 cores as for 64
    on 128; 0.2.0 took 5% of *one* CPU, summed over the threads, which 64 threads each waiting a
    harmless 0.1% already passed."""
    wanted = run_s + wait_s
    if wanted <= 0 or interval <= 0 or 100.0 * wanted / interval < BUSY_PERCENT:
        return False
    return 100.0 * wait_s / wanted > CONTENDED_WAIT_PCT


def wait_share(run_s: float, wait_s: float) -> float:
    """The share of the CPU time wanted (run + wait) spent waiting for a CPU, in percent."""
    wanted = run_s + wait_s
    return round(100.0 * wait_s / wanted, 1) if wanted > 0 else 0.0


def _unreadable_note(count: int, denied: list[dict], shown: int = 5) -> str:
    """'pid 1 (process_api) could not be inspected: permission denied: root without ...' -- which
    processes, and why, grouped by reason; the first few pids of each."""
    if not denied:
        return f"{plural(count, 'process')} could not be inspected (permission denied)"
    by_reason: dict[str, list[dict]] = {}
    for d in denied:
        by_reason.setdefault(d["reason"], []).append(d)
    parts = []
    for reason, group in by_reason.items():
        who = ", ".join(f"{d['pid']} ({d['command']})" for d in group[:shown])
        more = f" and {len(group) - shown} more" if len(group) > shown else ""
        parts.append(f"{'pid' if len(group) == 1 else 'pids'} {who}{more}: {reason}")
    return "could not inspect " + "; ".join(parts)


def _census(
    procs: list[BlasProcess],
    usable: int,
    basis: str,
    interval: float,
    unreadable: int,
    measured: str | None = None,
    denied: list[dict] | None = None,
) -> Census:
    """The verdict: from the measured run-queue wait when there is one, else from thread counts."""
    total = sum(p.blas_threads for p in procs)
    busy = [p for p in procs if p.busy]
    busy_total = sum(p.blas_threads for p in busy)
    waited = [p for p in procs if p.contended]
    run, wait = sum(p.run_s for p in waited), sum(p.wait_s for p in waited)
    share = wait_share(run, wait) if waited else None

    def limit_each(n: int) -> str:
        return f"limit each to {max(1, usable // n)} (blastune env --jobs {n})"

    if measured == "schedstat" and waited:
        whose = "their" if len(waited) > 1 else "its"
        who = f"{plural(len(waited), 'process')} waited {share:.0f}% of {whose} time for a CPU"
        mine = sum(p.blas_threads for p in waited)
        if busy_total > usable or mine > usable:
            verdict = "oversubscribed"
            message = (
                f"{who}: their BLAS runs {max(busy_total, mine)} threads on {usable} usable cores; "
                + limit_each(max(1, len(busy), len(waited)))
            )
        else:
            verdict = "contended"
            message = (
                f"{who}, though their BLAS threads ({mine}) fit the {usable} usable cores: "
                "other programs keep the CPUs busy"
            )
    elif measured == "cpu-percent" and busy_total > usable:
        verdict = "oversubscribed"
        message = (
            f"{len(busy)} busy processes may run {busy_total} BLAS threads on {usable} usable "
            f"cores: {limit_each(len(busy))}"
        )
    elif total > usable:
        verdict = "at-risk"
        fine = (
            f"none waited for a CPU in the {interval:g} s measured: fine while they take turns"
            if measured == "schedstat"
            else "fine while they take turns, oversubscribed when they compute at once"
        )
        message = (
            f"{plural(len(procs), 'process')} hold BLAS pools of {total} threads in all on "
            f"{usable} usable cores; {fine}"
        )
    else:
        verdict = "ok"
        message = (
            f"{total} BLAS threads in {plural(len(procs), 'process')} fit {usable} usable cores"
        )
    notes = []
    if unreadable:
        notes.append(_unreadable_note(unreadable, denied or []))
    if measured == "cpu-percent":
        notes.append(
            "this kernel keeps no per-thread schedstat: the verdict comes from CPU use, not "
            "measured waits"
        )
    return Census(
        schema=PS_SCHEMA,
        usable_cores=usable,
        usable_basis=basis,
        processes=procs,
        total_blas_threads=total,
        busy_blas_threads=busy_total,
        verdict=verdict,
        message=message,
        interval=interval,
        unreadable=unreadable,
        unreadable_processes=list(denied or []),
        notes=notes,
        measured_by=measured,
        contended_processes=len(waited),
        wait_share_pct=share,
    )
