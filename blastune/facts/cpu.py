"""What the CPU allows this process: cores, affinity, cgroup quota, SIMD, nominal peak.

Everything here reads /proc and /sys (Linux) with portable fallbacks, and returns plain data.
"""

from __future__ import annotations

import math
import os
import platform
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

# Double-precision FLOPs per cycle per core, by the widest SIMD level the CPU reports.
# Basis: FMA units x vector lanes x 2 (an FMA is two FLOPs). x86 server cores with AVX-512
# usually have two FMA ports (32); some client parts have one (16) -- we assume two and say so.
# (level, the cpuinfo flags that prove it, fp64 flops/cycle, how we got the number), widest first
SIMD_LEVELS = (
    ("avx512", "avx512f", 32, "2 FMA units x 8 doubles x 2"),
    ("avx2", "avx2 fma", 16, "2 FMA units x 4 doubles x 2"),
    ("avx", "avx", 8, "1 add + 1 mul unit x 4 doubles"),
    ("sse4", "sse4_2", 4, "1 add + 1 mul unit x 2 doubles"),
    ("sse2", "sse2", 4, "1 add + 1 mul unit x 2 doubles"),
    ("sve", "sve", 8, "2 FMA units x 2 doubles x 2 (128-bit SVE assumed)"),
    ("neon", "asimd", 8, "2 FMA units x 2 doubles x 2"),
)
_SIMD = {level: (set(flags.split()), fpc, how) for level, flags, fpc, how in SIMD_LEVELS}


@dataclass
class CgroupQuota:
    version: int | None = None  # 1, 2 or None when no quota file was found
    quota_cores: float | None = None  # None = no limit
    source: str | None = None  # the file the limit came from

    def to_dict(self):
        return asdict(self)


@dataclass
class CpuInfo:
    model: str
    machine: str
    logical_cores: int
    physical_cores: int
    affinity: list[int]
    cgroup: CgroupQuota
    usable_cores: int
    usable_basis: str
    simd: str
    flags_checked: list[str]
    clock_mhz: float | None
    clock_source: str | None
    flops_per_cycle_fp64: int | None
    peak_gflops_per_core: float | None
    peak_gflops_total: float | None
    peak_basis: str
    smt: bool = field(default=False)
    peak_clock_source: str | None = None  # a key of PEAK_CLOCK_SOURCES (added in 0.3)

    def to_dict(self):
        return asdict(self)  # the cgroup too: asdict() converts nested dataclasses


def read_text(path: str | Path, default: str | None = None) -> str | None:
    """A /proc or /sys file as text, or ``default`` when it is gone, not ours to read, or not there
    in this kernel."""
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return default


def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """Split /proc/cpuinfo into one dict per logical CPU."""
    cpus, cur = [], {}
    for line in text.splitlines():
        if not line.strip():
            if cur:
                cpus.append(cur)
            cur = {}
            continue
        key, _, value = line.partition(":")
        cur[key.strip()] = value.strip()
    if cur:
        cpus.append(cur)
    return cpus


def _cpuinfo() -> list[dict[str, str]]:
    return parse_cpuinfo(read_text("/proc/cpuinfo", ""))


def affinity() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _cores(quota: str, period: str) -> float | None:
    """quota / period as cores; None for no limit, or for a file we cannot make sense of."""
    try:
        q, per = int(quota), int(period)
    except ValueError:
        return None
    return q / per if q > 0 and per > 0 else None


def cgroup_ancestors(base: Path, rel: str):
    """Our cgroup's directory under ``base`` and each parent up to ``base`` itself: a limit set on a
    parent (a Slurm job, a systemd slice, a container's own cgroup) binds every cgroup below it."""
    base = base.resolve()
    d = (base / rel.lstrip("/")).resolve()
    while True:
        yield d
        if d == base or base not in d.parents:
            return
        d = d.parent


def _tightest(found) -> tuple[float | None, str | None]:
    """The smallest of (cores, file) limits found (None: no limit there); (None, None) if none."""
    limits = [(cores, path) for cores, path in found if cores is not None]
    return min(limits, key=lambda limit: limit[0], default=(None, None))


def _cgroup_v2_quota(root: Path, rel: str) -> tuple[float | None, str | None]:
    """The smallest cpu.max along the path from our cgroup up to the root (limits nest)."""
    found = []
    for d in cgroup_ancestors(root, rel):
        fields = read_text(d / "cpu.max", "").split()
        if fields and fields[0] != "max":
            found.append(
                (_cores(fields[0], fields[1] if len(fields) > 1 else "100000"), str(d / "cpu.max"))
            )
    return _tightest(found)


def _cgroup_v1_quota(root: Path, rel: str) -> tuple[float | None, str | None]:
    """The smallest cpu.cfs_quota_us / cpu.cfs_period_us from our cgroup up to the controller's
    mount root (a quota of -1 means none), in the first mount that has the files."""
    for ctrl in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):
        base = root / ctrl
        if not base.is_dir():
            continue
        found = []
        # Inside a container the mount root is the container's own cgroup and our path below it
        # does not exist: the walk then reads the root alone.
        for d in cgroup_ancestors(base, rel):
            q, per = read_text(d / "cpu.cfs_quota_us"), read_text(d / "cpu.cfs_period_us")
            if q is not None and per is not None:
                found.append((_cores(q, per), str(d / "cpu.cfs_quota_us")))
        if found:
            return _tightest(found)
    return None, None


def cgroup_lines(text: str):
    """(controllers, path) per line of /proc/PID/cgroup ("hierarchy-id:controllers:path")."""
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            yield parts[1], parts[2]


CGROUP_ROOT_VAR = "BLASTUNE_CGROUP_ROOT"


def cgroup_root(root: str | Path = "/") -> Path:
    """Where the cgroup file system is mounted: $BLASTUNE_CGROUP_ROOT (testing, diagnosis) or
    ``root``/sys/fs/cgroup."""
    return Path(os.environ.get(CGROUP_ROOT_VAR) or Path(root) / "sys/fs/cgroup")


def cgroup_quota(proc_cgroup: str | None = None, root: str | Path | None = None) -> CgroupQuota:
    """The CPU quota of this process's cgroup (v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``)."""
    text = proc_cgroup if proc_cgroup is not None else read_text("/proc/self/cgroup")
    if not text:
        return CgroupQuota()
    root = Path(root) if root is not None else cgroup_root()
    for controllers, rel in cgroup_lines(text):
        if controllers == "" and (root / "cgroup.controllers").exists():
            q, src = _cgroup_v2_quota(root, rel)
            return CgroupQuota(2, q, src)
        if "cpu" in controllers.split(","):
            q, src = _cgroup_v1_quota(root, rel)
            return CgroupQuota(1, q, src)
    return CgroupQuota()


def usable_cores(aff: list[int] | None = None, quota: CgroupQuota | None = None) -> tuple[int, str]:
    """The smallest of: logical cores, the affinity mask, the cgroup quota (rounded up)."""
    aff = affinity() if aff is None else aff
    quota = cgroup_quota() if quota is None else quota
    n, basis = len(aff), "affinity mask"
    if len(aff) == (os.cpu_count() or len(aff)):
        basis = "logical cores"
    if quota.quota_cores is not None:
        q = max(1, math.ceil(quota.quota_cores))
        if q < n:
            n, basis = q, f"cgroup v{quota.version} CPU quota ({quota.quota_cores:g} cores)"
    return n, basis


def physical_cores() -> int:
    """The machine's physical cores (SMT siblings counted once)."""
    return _physical_cores(_cpuinfo(), os.cpu_count() or 1)


def _physical_cores(cpus: list[dict[str, str]], logical: int) -> int:
    pairs = {(c.get("physical id"), c.get("core id")) for c in cpus if "core id" in c}
    if pairs:
        return len(pairs)
    # sysfs topology (ARM and others where cpuinfo has no core id): one sibling list per core
    lists = Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology/thread_siblings_list")
    return len({read_text(p, "").strip() for p in lists} - {""}) or logical


def simd_level(flags: set[str]) -> str:
    return next((level for level, (need, _, _) in _SIMD.items() if need <= flags), "unknown")


# Where the clock of the nominal peak comes from, best first (``CpuInfo.peak_clock_source``). A peak
# is the most a core can do, so it takes the highest clock the core runs at: cpufreq's
# cpuinfo_max_freq (the boost clock a one-thread dgemm reaches). The base clock the vendor states
# (cpufreq base_frequency, the "@ 2.10GHz" of the model name) is lower, and a good dgemm beats a
# peak built on it (a 16-core Xeon's 1-thread dot read "103% of peak" at its 2100 MHz base). Where
# no cpufreq is exposed (most VMs), "cpu MHz" is what the hypervisor reports, often the base too:
# `info --measure` then proves a higher clock with a dgemm ("measured").
PEAK_CLOCK_SOURCES = {
    "cpufreq-max": "cpufreq cpuinfo_max_freq, the highest clock the CPU runs at",
    "cpufreq-base": "cpufreq base_frequency, the base clock: cores boost above it",
    "model-name": "the nominal clock in the CPU model name: cores may boost above it",
    "cpuinfo-mhz": "/proc/cpuinfo 'cpu MHz', the clock the kernel or hypervisor reports",
    "measured": "a one-thread dgemm proved at least this clock (info --measure)",
}


def _khz_files(root: Path, name: str) -> list[int]:
    out = []
    for path in (root / "sys/devices/system/cpu").glob(f"cpu[0-9]*/cpufreq/{name}"):
        text = read_text(path, "").strip()
        if text.isdigit() and int(text) > 0:
            out.append(int(text))
    return out


def peak_clock(
    cpus: list[dict[str, str]], model: str, root: str | Path = "/"
) -> tuple[float | None, str | None]:
    """(MHz, source id) of the clock the nominal peak assumes: the highest one the CPU is known to
    run at (``PEAK_CLOCK_SOURCES``, best first). ``root``: where ``sys/`` is read (a capture)."""
    root = Path(root)
    top = _khz_files(root, "cpuinfo_max_freq")
    if top:
        return max(top) / 1000, "cpufreq-max"  # hybrid parts: the P-cores' clock
    base = _khz_files(root, "base_frequency")
    if base:
        return max(base) / 1000, "cpufreq-base"
    m = re.search(r"@\s*([\d.]+)\s*GHz", model)
    if m:
        return float(m.group(1)) * 1000, "model-name"
    mhz = []
    for c in cpus:
        try:
            mhz.append(float(c["cpu MHz"]))
        except (KeyError, ValueError):
            pass
    if mhz:
        return max(mhz), "cpuinfo-mhz"
    return None, None


def with_peak_clock(cpu: "CpuInfo", mhz: float | None, source: str | None) -> "CpuInfo":
    """``cpu`` with its clock and nominal peak (per core, total, basis) computed for ``mhz``."""
    fpc, level = cpu.flops_per_cycle_fp64, cpu.simd
    how = _SIMD.get(level, (None, None, ""))[2]
    desc = PEAK_CLOCK_SOURCES.get(source) if source else None
    per_core = fpc * mhz / 1000 if fpc and mhz else None
    total = per_core * cpu.usable_cores if per_core else None
    if per_core:
        basis = (
            f"nominal: {fpc} FP64 FLOPs/cycle ({level}: {how}) x {mhz:.0f} MHz "
            f"[clock: {desc}]; total = per core x {cpu.usable_cores} usable cores"
        )
    else:
        basis = "unknown: SIMD level or clock not readable"
    return replace(
        cpu,
        clock_mhz=mhz,
        clock_source=desc,
        peak_clock_source=source,
        peak_gflops_per_core=round(per_core, 1) if per_core else None,
        peak_gflops_total=round(total, 1) if total else None,
        peak_basis=basis,
    )


def _flags_of(first: dict[str, str]) -> set[str]:
    return set((first.get("flags") or first.get("Features") or "").split())  # x86 / ARM spelling


def cpu_flags() -> set[str]:
    """The feature flags /proc/cpuinfo lists for the first CPU (empty where there is none)."""
    cpus = _cpuinfo()
    return _flags_of(cpus[0]) if cpus else set()


def cpu_info() -> CpuInfo:
    cpus = _cpuinfo()
    first = cpus[0] if cpus else {}
    logical = os.cpu_count() or max(1, len(cpus))
    model = first.get("model name") or first.get("Model") or platform.processor() or "unknown"
    flags = _flags_of(first)
    aff = affinity()
    quota = cgroup_quota()
    usable, basis = usable_cores(aff, quota)
    physical = _physical_cores(cpus, logical)
    level = simd_level(flags)
    fpc = _SIMD.get(level, (None, None, None))[1]
    mhz, source = peak_clock(cpus, model)
    cpu = CpuInfo(
        model=model,
        machine=platform.machine(),
        logical_cores=logical,
        physical_cores=physical,
        affinity=aff,
        cgroup=quota,
        usable_cores=usable,
        usable_basis=basis,
        simd=level,
        flags_checked=sorted(f for need, _, _ in _SIMD.values() for f in need if f in flags),
        clock_mhz=None,
        clock_source=None,
        flops_per_cycle_fp64=fpc,
        peak_gflops_per_core=None,
        peak_gflops_total=None,
        peak_basis="",
        smt=physical < logical,
    )
    return with_peak_clock(cpu, mhz, source)


def _cgroup_memory_dirs(proc_cgroup: str, root: Path) -> list[tuple[Path, str, str, str]]:
    """(directory, limit file, usage file, stat key) for our memory cgroup and each of its
    ancestors: a limit set on a parent (a Slurm job, a systemd slice) binds every cgroup below
    it."""
    out = []
    for controllers, rel in cgroup_lines(proc_cgroup):
        if controllers == "" and (root / "cgroup.controllers").exists():
            base, files = root, ("memory.max", "memory.current", "inactive_file")
        elif "memory" in controllers.split(","):
            base, files = (
                root / "memory",
                ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
            )
        else:
            continue
        out += [(d, *files) for d in cgroup_ancestors(base, rel)]
    return out


def available_memory(
    proc_cgroup: str | None = None, root: str | Path | None = None
) -> tuple[int | None, str]:
    """Bytes this process may still allocate: MemAvailable, capped by the tightest cgroup memory
    limit on the way from our cgroup up to the root (v2 ``memory.max``, v1
    ``memory.limit_in_bytes``).

    A cgroup's usage counts page cache, which the kernel reclaims before it fails an allocation, so
    the room under a limit is limit - (usage - inactive file cache), as container runtimes reckon
    it."""
    avail, src = None, "unknown"
    text = read_text("/proc/meminfo", "")
    m = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.M)
    if m:
        avail, src = int(m.group(1)) * 1024, "MemAvailable"
    proc_cgroup = proc_cgroup if proc_cgroup is not None else read_text("/proc/self/cgroup", "")
    for d, limit_name, usage_name, cache_key in _cgroup_memory_dirs(
        proc_cgroup, Path(root) if root is not None else cgroup_root()
    ):
        lim = read_text(d / limit_name, "").strip()
        if not lim.isdigit() or int(lim) >= (1 << 60):  # "max", or v1's "no limit" (a huge number)
            continue
        usage = read_text(d / usage_name, "").strip()
        used = int(usage) if usage.isdigit() else 0
        cache = re.search(rf"^{cache_key} (\d+)$", read_text(d / "memory.stat", ""), re.M)
        used = max(0, used - (int(cache.group(1)) if cache else 0))
        room = max(0, int(lim) - used)
        if avail is None or room < avail:
            avail, src = room, f"cgroup memory limit ({d / limit_name})"
    return avail, src
