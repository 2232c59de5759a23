"""OpenBLAS kernel names (what ``OPENBLAS_CORETYPE`` accepts on x86-64) and the CPU flags they need.

``OPENBLAS_CORETYPE`` overrides OpenBLAS's CPU detection in DYNAMIC_ARCH builds. Naming a kernel
whose instructions the CPU lacks does not fail at load: the first matrix product dies with SIGILL
(measured here with Debian's OpenBLAS 0.3.21: Bulldozer/Piledriver/Steamroller/Excavator need
AMD's FMA4, which no Intel CPU has). Naming an older kernel than the CPU supports just runs slower.

The flags are the ones Linux prints in /proc/cpuinfo. ``rank`` orders kernels by the instruction
set they use, so a lower rank than the best one the CPU can run means "older than this CPU
supports".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CoreType:
    name: str
    flags: frozenset
    rank: int


_SKX = "avx512f avx512dq avx512bw avx512vl"
# (kernel, the flags it needs, rank)
_KERNELS = (
    ("Katmai", "sse", 1),
    ("Coppermine", "sse", 1),
    ("Northwood", "sse2", 2),
    ("Banias", "sse2", 2),
    ("Opteron", "sse2", 2),
    ("Athlon", "sse2", 2),
    ("Prescott", "pni", 3),  # pni = SSE3
    ("Opteron_SSE3", "pni", 3),
    ("Nano", "pni", 3),
    ("Core2", "ssse3", 4),
    ("Atom", "ssse3", 4),
    ("Bobcat", "ssse3", 4),
    ("Penryn", "sse4_1", 5),
    ("Dunnington", "sse4_1", 5),
    ("Nehalem", "sse4_2", 6),
    ("Barcelona", "pni sse4a", 6),
    ("Sandybridge", "avx", 7),
    ("Bulldozer", "avx fma4", 8),  # AMD FMA4: SIGILL on every Intel CPU
    ("Piledriver", "avx fma4", 8),
    ("Steamroller", "avx fma4", 8),
    ("Excavator", "avx fma4", 8),
    ("Haswell", "avx2 fma", 9),
    ("Zen", "avx2 fma", 9),
    ("SkylakeX", _SKX, 10),
    ("Cooperlake", f"{_SKX} avx512_bf16", 11),
    ("SapphireRapids", f"{_SKX} avx512_bf16 amx_bf16 amx_tile", 12),
)
CORETYPES = {n.lower(): CoreType(n, frozenset(flags.split()), r) for n, flags, r in _KERNELS}


def lookup(name: str) -> CoreType | None:
    """OpenBLAS compares core names without regard to case, but blanks count: ' Haswell ' is 'Core
    not found'."""
    return CORETYPES.get(name.lower())


def missing_flags(core: CoreType, cpu_flags: set[str]) -> list[str]:
    return sorted(core.flags - cpu_flags)


def best_for(cpu_flags: set[str]) -> CoreType | None:
    """The newest kernel whose instructions this CPU has (Intel names win ties: they are what
    OpenBLAS's own detection picks on Intel parts, and the ranks are what matter)."""
    runnable = [c for c in CORETYPES.values() if c.flags <= cpu_flags]
    return max(runnable, key=lambda c: c.rank) if runnable else None
