"""Netlib reference BLAS / LAPACK: correct, single-threaded, slow. Recognised by its packaging
path."""

from __future__ import annotations

from blastune.libraries.base import FIXED, Family, version_in_path


class Reference(Family):
    name = "reference"
    api = "blas"
    # Debian/Ubuntu: .../blas/libblas.so.3 and .../lapack/liblapack.so.3; others: librefblas,
    # libreflapack
    path_pattern = r"(/blas/libblas\.so|/lapack/liblapack\.so|librefblas|libreflapack)"
    # in ps: BLAS files only (a reference LAPACK beside another BLAS is no thread pool)
    ps_pattern = r"/blas/libc?blas[^/]*\.so|librefblas[^/]*\.so"
    serial = True
    threadpoolctl_blind = True
    display_name = "reference BLAS"
    measured_gflops = 2.6
    slow = True

    @classmethod
    def describe(cls, path):
        return cls.library_info(
            path,
            api="lapack" if "lapack" in path.rsplit("/", 1)[-1] else "blas",
            version=version_in_path(path),
            threading_layer="none",
            num_threads=1,
            threads_source="build",
            control=FIXED,
            notes=["reference implementation: always 1 thread and unoptimised"],
        )
