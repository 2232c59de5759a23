"""Apple Accelerate / vecLib (macOS): threads only through VECLIB_MAXIMUM_THREADS before start."""

from __future__ import annotations

import os

from blastune.core.counts import first_positive_int
from blastune.libraries.base import ENV, Family


class Accelerate(Family):
    name = "accelerate"
    api = "blas+lapack"
    path_pattern = r"(Accelerate\.framework|vecLib\.framework|libBLAS\.dylib|libLAPACK\.dylib)"
    ps_pattern = r"(Accelerate|vecLib)\.framework"
    thread_vars = ("VECLIB_MAXIMUM_THREADS",)

    @classmethod
    def describe(cls, path):
        n, _ = first_positive_int(os.environ, cls.thread_vars)
        return cls.library_info(
            path,
            threading_layer="gcd",
            num_threads=n,
            threads_source="env",
            control=ENV,
            control_vars=list(cls.thread_vars),
        )
