"""The vendor families, in the order they are tried.

A wrapper is tried before what it wraps (FlexiBLAS before its backends); families known by marker
symbols come before those known only by their path.
"""
from __future__ import annotations

from blastune.libraries.accelerate import Accelerate
from blastune.libraries.atlas import ATLAS
from blastune.libraries.base import ENV, FIXED, RUNTIME, Control, Family, LibraryInfo
from blastune.libraries.blis import BLIS
from blastune.libraries.flexiblas import FlexiBLAS
from blastune.libraries.mkl import MKL
from blastune.libraries.openblas import OpenBLAS
from blastune.libraries.openmp import GNUOpenMP, IntelOpenMP, LLVMOpenMP
from blastune.libraries.reference import Reference

BLAS_FAMILIES: tuple[type[Family], ...] = (FlexiBLAS, MKL, OpenBLAS, BLIS, ATLAS, Accelerate, Reference)
OPENMP_FAMILIES: tuple[type[Family], ...] = (GNUOpenMP, IntelOpenMP, LLVMOpenMP)
VENDORS = tuple(f.name for f in BLAS_FAMILIES) + ("unknown",)

__all__ = ["BLAS_FAMILIES", "OPENMP_FAMILIES", "VENDORS", "Family", "LibraryInfo", "Control",
           "RUNTIME", "ENV", "FIXED"]
