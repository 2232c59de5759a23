"""The vendor registry: every BLAS/LAPACK and OpenMP family blastune knows, in the order they are
tried.

A wrapper is tried before what it wraps (FlexiBLAS before its backends); families known by marker
symbols come before those known only by their path. Everything else in blastune -- detection,
``ps``, the exported and checked environment variables, the threadpoolctl bridge, the doctor --
reads these two lists, so adding a vendor is one module (a ``Family`` subclass) and one line here,
or one ``register_family(MyFamily)`` call from outside.
"""

from __future__ import annotations

from blastune.libraries.accelerate import Accelerate
from blastune.libraries.atlas import ATLAS
from blastune.libraries.base import ENV, FIXED, RUNTIME, Advice, Control, Family, LibraryInfo, Seat
from blastune.libraries.blis import BLIS
from blastune.libraries.flexiblas import FlexiBLAS
from blastune.libraries.mkl import MKL
from blastune.libraries.openblas import OpenBLAS
from blastune.libraries.openmp import GNUOpenMP, IntelOpenMP, LLVMOpenMP
from blastune.libraries.reference import Reference

# Lists, changed only in place by register_family: modules that imported them see newcomers.
BLAS_FAMILIES: list[type[Family]] = [FlexiBLAS, OpenBLAS, MKL, BLIS, ATLAS, Accelerate, Reference]
OPENMP_FAMILIES: list[type[Family]] = [GNUOpenMP, IntelOpenMP, LLVMOpenMP]


def register_family(family: type[Family], before: type[Family] | None = None) -> None:
    """Add a family to the registry (an OpenMP runtime when its ``api`` is "openmp").

    ``before``: try it ahead of that family (a wrapper goes before what it wraps); default last.
    Registering a family twice is a no-op.
    """
    if not (isinstance(family, type) and issubclass(family, Family)):
        raise TypeError(f"register_family() takes a Family subclass, not {family!r}")
    families = OPENMP_FAMILIES if family.api == "openmp" else BLAS_FAMILIES
    if family in families:
        return
    families.insert(families.index(before) if before in families else len(families), family)


def families() -> list[type[Family]]:
    """Every family: OpenMP runtimes first (the variables they read are shared by many BLAS)."""
    return [*OPENMP_FAMILIES, *BLAS_FAMILIES]


def family_named(name: str) -> type[Family] | None:
    return next((f for f in families() if f.name == name), None)


__all__ = [
    "BLAS_FAMILIES",
    "OPENMP_FAMILIES",
    "register_family",
    "families",
    "family_named",
    "Family",
    "LibraryInfo",
    "Control",
    "Advice",
    "Seat",
    "RUNTIME",
    "ENV",
    "FIXED",
]
