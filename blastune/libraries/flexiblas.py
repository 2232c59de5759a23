"""FlexiBLAS: a switch that forwards to a backend chosen by FLEXIBLAS at start-up."""

from __future__ import annotations

import ctypes

from blastune.libraries.base import Family, function, handle


class FlexiBLAS(Family):
    name = "flexiblas"
    api = "blas+lapack"
    marker_symbols = ("flexiblas_get_num_threads", "flexiblas_current_backend")
    thread_api = ("flexiblas_get_num_threads", "flexiblas_set_num_threads")
    ps_pattern = r"libflexiblas[^/]*\.so"
    # FlexiBLAS reads no thread count of its own: the backend it loads reads its own variables
    # (see its family), and in another process that backend's file is mapped too.
    wrapper = True
    key_vars = ("FLEXIBLAS",)
    # reported by info since 0.1.0; FlexiBLAS's manual documents no such variable
    other_vars = ("FLEXIBLAS_NUM_THREADS",)

    @classmethod
    def describe(cls, path):
        lib = handle(path)
        info = cls.library_info(path, control_vars=list(cls.key_vars))
        ver = function(
            lib, "flexiblas_get_version", ctypes.c_int, [ctypes.POINTER(ctypes.c_int)] * 3
        )
        if ver:
            parts = [ctypes.c_int() for _ in range(3)]
            ver(*[ctypes.byref(p) for p in parts])
            info.version = ".".join(str(p.value) for p in parts)
        cur = function(
            lib, "flexiblas_current_backend", ctypes.c_int, [ctypes.c_char_p, ctypes.c_size_t]
        )
        if cur:
            buf = ctypes.create_string_buffer(1024)
            cur(buf, 1024)
            info.architecture = f"backend {buf.value.decode(errors='replace')}"
        cls.read_runtime_threads(info, path)
        return info
