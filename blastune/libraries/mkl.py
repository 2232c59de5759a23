"""Intel oneMKL (libmkl_rt and the layered libraries)."""
from __future__ import annotations

import ctypes

from blastune.libraries.base import ENV, Family, LibraryInfo, function, handle

# MKL_Set_Threading_Layer(-1) returns the layer in use without changing it.
_LAYERS = {0: "intel", 1: "sequential", 2: "pgi", 3: "gnu", 4: "tbb", -1: "not set"}


class MKL(Family):
    name = "mkl"
    api = "blas+lapack"
    marker_symbols = ("MKL_Get_Max_Threads", "mkl_get_max_threads")
    # interface and threading layers re-export the API; the runtime (libmkl_rt) or core is the library
    ignore_pattern = r"libmkl_(gf|intel|gnu|tbb|pgi|sequential|avx|vml|def|mc)"
    thread_api = ("MKL_Get_Max_Threads", "MKL_Set_Num_Threads")

    @classmethod
    def describe(cls, path):
        lib = handle(path)
        info = LibraryInfo(vendor=cls.name, api=cls.api, filepath=path,
                           control_vars=["MKL_NUM_THREADS", "OMP_NUM_THREADS", "MKL_THREADING_LAYER"])
        ver = function(lib, "MKL_Get_Version_String", None, [ctypes.c_char_p, ctypes.c_int])
        if ver:
            buf = ctypes.create_string_buffer(256)
            ver(buf, 256)
            text = buf.value.decode(errors="replace")
            info.version = next((w.split("-")[0] for w in text.split() if w[:1].isdigit()), text or None)
            if "for Intel(R) 64" in text:
                info.architecture = "intel64"
        layer = function(lib, "MKL_Set_Threading_Layer", ctypes.c_int, [ctypes.c_int])
        info.threading_layer = _LAYERS.get(layer(-1), "unknown") if layer else "unknown"
        if info.threading_layer == "sequential":
            info.num_threads, info.threads_source, info.control = 1, "build", ENV
            info.notes.append("sequential layer: 1 thread; set MKL_THREADING_LAYER=GNU or INTEL before start")
        else:
            cls.read_runtime_threads(info, path)
        return info

