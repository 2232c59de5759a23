"""blastune: which BLAS/LAPACK numpy and scipy run on, how it scales, and how to keep jobs from
oversubscribing the cores.

The library returns plain data (dataclasses with ``to_dict()``); the ``blastune`` CLI only renders
it.
"""

from __future__ import annotations

__version__ = "0.3.0"

# Heavy or optional pieces load on first use, so ``import blastune`` stays cheap inside workers.
_LAZY = {
    "info": ("blastune.facts.info", "info"),
    "limit": ("blastune.control.limits", "limit"),
    "get_threads": ("blastune.control.limits", "get_threads"),
    "set_threads": ("blastune.control.limits", "set_threads"),
    "worker_initializer": ("blastune.control.limits", "worker_initializer"),
    "cpu_info": ("blastune.facts.cpu", "cpu_info"),
    "thread_env": ("blastune.facts.environment", "thread_env"),
    "render_exports": ("blastune.control.exports", "render_exports"),
    "sweep": ("blastune.measure.sweep.entry", "sweep"),
    "jobs": ("blastune.advise.recommend", "jobs"),
    "recommend": ("blastune.advise.recommend", "recommend"),
    "doctor": ("blastune.advise.doctor.report", "doctor"),
    "processes": ("blastune.facts.census", "processes"),
    "read_topology": ("blastune.facts.topology", "read_topology"),
    "plan_layout": ("blastune.control.pinning", "plan_layout"),
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
