"""Intel oneMKL (libmkl_rt and the layered libraries)."""

from __future__ import annotations

import ctypes

from blastune.core.counts import first_positive_int
from blastune.libraries.base import ENV, Family, Seat, function, handle

# MKL_Set_Threading_Layer(-1) returns the layer in use without changing it.
_LAYERS = {0: "intel", 1: "sequential", 2: "pgi", 3: "gnu", 4: "tbb", -1: "not set"}


class MKL(Family):
    name = "mkl"
    api = "blas+lapack"
    marker_symbols = ("MKL_Get_Max_Threads", "mkl_get_max_threads")
    # interface and threading layers re-export the API; the runtime (libmkl_rt) or core is the
    # library
    ignore_pattern = r"libmkl_(gf|intel|gnu|tbb|pgi|sequential|avx|vml|def|mc)"
    thread_api = ("MKL_Get_Max_Threads", "MKL_Set_Num_Threads")
    ps_pattern = r"libmkl_(rt|core)[^/]*\.so"
    thread_vars = ("MKL_NUM_THREADS", "OMP_NUM_THREADS")
    # oneMKL 2024.2: MKL_NUM_THREADS=' 2' runs 1 thread (measured)
    strict_vars = ("MKL_NUM_THREADS",)
    key_vars = ("MKL_THREADING_LAYER", "MKL_INTERFACE_LAYER", "MKL_DYNAMIC")
    other_vars = ("MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS")
    display_name = "oneMKL"

    @classmethod
    def planned_threads(cls, environ, seat: Seat, paths=()):
        """As oneMKL 2024 does it (measured on the matrix's GNU threading layer, 2 physical cores):
        by default one thread per physical core in the affinity mask; a count from MKL_NUM_THREADS
        or OMP_NUM_THREADS is capped at the machine's physical cores -- even under taskset -c 0 --
        while MKL_DYNAMIC is true (its default); MKL_DYNAMIC=false runs exactly the count asked."""
        env = environ or {}
        if env.get("MKL_THREADING_LAYER", "").strip().lower() == "sequential":
            return 1, f"{cls.name}: MKL_THREADING_LAYER=sequential, 1 thread"
        physical = seat.physical_cores or seat.cpus
        n, var = first_positive_int(env, cls.thread_vars)
        if n is None:
            d = min(physical, seat.cpus)
            why = "environment unreadable, assumed" if environ is None else "default,"
            return d, f"{cls.name}: {why} one thread per physical core it may use ({d})"
        dynamic = env.get("MKL_DYNAMIC", "").strip().lower() not in ("false", "0", "no")
        if dynamic and n > physical:
            return (
                physical,
                f"{cls.name}: {var}={n}, capped at the {physical} physical cores (MKL_DYNAMIC)",
            )
        return n, f"{cls.name}: {var}={n}"

    @classmethod
    def describe(cls, path):
        lib = handle(path)
        info = cls.library_info(path, control_vars=[*cls.thread_vars, "MKL_THREADING_LAYER"])
        ver = function(lib, "MKL_Get_Version_String", None, [ctypes.c_char_p, ctypes.c_int])
        if ver:
            buf = ctypes.create_string_buffer(256)
            ver(buf, 256)
            text = buf.value.decode(errors="replace")
            info.version = next(
                (w.split("-")[0] for w in text.split() if w[:1].isdigit()), text or None
            )
            if "for Intel(R) 64" in text:
                info.architecture = "intel64"
        layer = function(lib, "MKL_Set_Threading_Layer", ctypes.c_int, [ctypes.c_int])
        info.threading_layer = _LAYERS.get(layer(-1), "unknown") if layer else "unknown"
        if info.threading_layer == "sequential":
            info.num_threads, info.threads_source, info.control = 1, "build", ENV
            info.notes.append(
                "sequential layer: 1 thread; set MKL_THREADING_LAYER=GNU or INTEL before start"
            )
        else:
            cls.read_runtime_threads(info, path)
        return info
