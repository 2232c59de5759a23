"""Apple Accelerate / vecLib (macOS): threads only through VECLIB_MAXIMUM_THREADS before start."""

from __future__ import annotations

from blastune.libraries.base import ENV, Family, LibraryInfo, env_threads


class Accelerate(Family):
    name = "accelerate"
    api = "blas+lapack"
    path_pattern = r"(Accelerate\.framework|vecLib\.framework|libBLAS\.dylib|libLAPACK\.dylib)"
    ps_pattern = r"(Accelerate|vecLib)\.framework"
    thread_vars = ("VECLIB_MAXIMUM_THREADS",)

    @classmethod
    def describe(cls, path):
        n, _ = env_threads(cls.thread_vars)
        return LibraryInfo(
            vendor=cls.name,
            api=cls.api,
            filepath=path,
            threading_layer="gcd",
            num_threads=n,
            threads_source="env",
            control=ENV,
            control_vars=list(cls.thread_vars),
        )
