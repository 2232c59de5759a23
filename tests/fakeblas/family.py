"""A fake vendor family: one module and, at its end, one registry line -- all it takes to add a vendor.

tests/test_registry.py loads it (with the shared library built from fakeblas.c) into real blastune
processes and checks that info, ps, env and doctor all know the vendor, though no file under
blastune/ names it.
"""

from __future__ import annotations

import ctypes

from blastune.libraries import register_family
from blastune.libraries.base import Advice, Family, LibraryInfo, function, handle


class FakeBLAS(Family):
    name = "fakeblas"
    api = "blas"
    marker_symbols = ("fakeblas_get_config",)
    ps_pattern = r"libfakeblas[^/]*\.so"
    thread_api = ("fakeblas_get_num_threads", "fakeblas_set_num_threads")
    thread_vars = ("FAKEBLAS_NUM_THREADS",)
    key_vars = ("FAKEBLAS_KERNEL",)
    caps_at_cpus = True
    doctor_check = "fakeblas-threads"

    @classmethod
    def describe(cls, path):
        info = LibraryInfo(
            vendor=cls.name,
            api=cls.api,
            filepath=path,
            threading_layer="pthreads",
            control_vars=list(cls.thread_vars),
        )
        cfg = function(handle(path), "fakeblas_get_config", ctypes.c_char_p)
        info.version = cfg().decode().split()[1] if cfg else None
        cls.read_runtime_threads(info, path)
        return info

    @classmethod
    def advise(cls, libs, environ, want, label):
        if not libs:
            return [Advice("ok", "FakeBLAS not loaded")]
        return [
            Advice("info", f"{label(libs[0])} runs {libs[0].num_threads} threads", "nothing to do")
        ]


register_family(FakeBLAS)
