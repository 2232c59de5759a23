"""Teach threadpoolctl the libraries it cannot see (Debian's BLIS, ATLAS, reference BLAS/LAPACK).

Registered through threadpoolctl's public ``register()``, so ``threadpool_info()`` -- what
scikit-learn and others print -- lists them with their fixed or env-set thread counts. Their
``set_num_threads`` does nothing, because nothing can change them at run time.
"""
from __future__ import annotations

import os

try:
    from threadpoolctl import LibController, register
except ImportError:  # threadpoolctl < 3.3 has no public registration
    LibController = register = None

_registered = False


def register_with_threadpoolctl() -> bool:
    global _registered
    if _registered or register is None:
        return _registered

    class BlastuneController(LibController):
        user_api = "blas"
        internal_api = "blastune"  # replaced per instance by the real vendor
        filename_prefixes = ("libblas", "liblapack", "libatlas", "libtatlas", "libsatlas", "librefblas")
        check_symbols = ("dgemm_", "dgesv_", "ATL_buildinfo")

        def set_additional_attributes(self):
            from blastune.detect import describe

            self._info = describe(os.path.realpath(self.filepath))
            self.internal_api = self._info.vendor
            self.threading_layer = self._info.threading_layer
            self.control = self._info.control

        def get_num_threads(self):
            return self._info.num_threads

        def set_num_threads(self, num_threads):
            return None  # fixed at build or only settable before start

        def get_version(self):
            from blastune.detect import describe

            return describe(os.path.realpath(self.filepath)).version

    register(BlastuneController)
    _registered = True
    return True
