"""blastune: which BLAS/LAPACK numpy and scipy run on, how it scales, and how to keep jobs from
oversubscribing the cores.

The library returns plain data (dataclasses with ``to_dict()``); the ``blastune`` CLI only renders it.
"""
from __future__ import annotations

import sys as _sys
import types as _types

__version__ = "0.1.0"

# Heavy or optional pieces load on first use, so ``import blastune`` stays cheap inside workers.
_LAZY = {
    "info": ("blastune.info", "info"),
    "limit": ("blastune.limits", "limit"),
    "get_threads": ("blastune.limits", "get_threads"),
    "set_threads": ("blastune.limits", "set_threads"),
    "worker_initializer": ("blastune.limits", "worker_initializer"),
    "cpu_info": ("blastune.cpu", "cpu_info"),
    "thread_env": ("blastune.envvars", "thread_env"),
    "render_exports": ("blastune.envvars", "render_exports"),
    "sweep": ("blastune.sweep", "sweep"),
    "jobs": ("blastune.jobs", "run_jobs"),
    "recommend": ("blastune.advice", "recommend"),
    "doctor": ("blastune.doctor", "doctor"),
    "processes": ("blastune.processes", "processes"),
    "BlastuneError": ("blastune.errors", "BlastuneError"),
    "NotControllableError": ("blastune.errors", "NotControllableError"),
    "NotControllableWarning": ("blastune.errors", "NotControllableWarning"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'blastune' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)


class _Package(_types.ModuleType):
    """Keep ``blastune.info``, ``.sweep``, ``.jobs``, ``.doctor``, ``.processes`` the functions.

    Importing a submodule (``from blastune.sweep import ...``, which the CLI and the modules do)
    makes Python bind it onto the package under the same name, hiding the function. Here that
    binding is turned into the function; the module stays reachable through ``sys.modules`` and
    ``from blastune.sweep import ...``.
    """

    def __setattr__(self, name, value):
        target = _LAZY.get(name)
        if target and isinstance(value, _types.ModuleType) and value.__name__ == target[0]:
            value = getattr(value, target[1])
        super().__setattr__(name, value)

    def __reduce__(self):
        # cloudpickle (joblib's loky, Dask) ships a script's functions by value together with the
        # modules they name; a ModuleType subclass must say "re-import me" or pickling fails
        return (__import__, (self.__name__,))


_sys.modules[__name__].__class__ = _Package
