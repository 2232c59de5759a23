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

_SKX = frozenset({"avx512f", "avx512dq", "avx512bw", "avx512vl"})


@dataclass(frozen=True)
class CoreType:
    name: str
    flags: frozenset
    rank: int


CORETYPES = {
    c.name.lower(): c
    for c in (
        CoreType("Katmai", frozenset({"sse"}), 1),
        CoreType("Coppermine", frozenset({"sse"}), 1),
        CoreType("Northwood", frozenset({"sse2"}), 2),
        CoreType("Banias", frozenset({"sse2"}), 2),
        CoreType("Opteron", frozenset({"sse2"}), 2),
        CoreType("Athlon", frozenset({"sse2"}), 2),
        CoreType("Prescott", frozenset({"pni"}), 3),  # pni = SSE3
        CoreType("Opteron_SSE3", frozenset({"pni"}), 3),
        CoreType("Nano", frozenset({"pni"}), 3),
        CoreType("Core2", frozenset({"ssse3"}), 4),
        CoreType("Atom", frozenset({"ssse3"}), 4),
        CoreType("Bobcat", frozenset({"ssse3"}), 4),
        CoreType("Penryn", frozenset({"sse4_1"}), 5),
        CoreType("Dunnington", frozenset({"sse4_1"}), 5),
        CoreType("Nehalem", frozenset({"sse4_2"}), 6),
        CoreType("Barcelona", frozenset({"pni", "sse4a"}), 6),
        CoreType("Sandybridge", frozenset({"avx"}), 7),
        CoreType("Bulldozer", frozenset({"avx", "fma4"}), 8),  # AMD FMA4: SIGILL on every Intel CPU
        CoreType("Piledriver", frozenset({"avx", "fma4"}), 8),
        CoreType("Steamroller", frozenset({"avx", "fma4"}), 8),
        CoreType("Excavator", frozenset({"avx", "fma4"}), 8),
        CoreType("Haswell", frozenset({"avx2", "fma"}), 9),
        CoreType("Zen", frozenset({"avx2", "fma"}), 9),
        CoreType("SkylakeX", _SKX, 10),
        CoreType("Cooperlake", _SKX | {"avx512_bf16"}, 11),
        CoreType("SapphireRapids", _SKX | {"avx512_bf16", "amx_bf16", "amx_tile"}, 12),
    )
}


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
