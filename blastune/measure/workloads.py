"""The tasks ``blastune jobs`` runs: a BLAS op, the seed's two examples, or the user's own function.

A ``Workload`` is a small picklable description; ``build_task`` turns it into the callable
``task(i)`` inside each worker, so inputs are created once per worker and never shipped per task.
"""

from __future__ import annotations

import importlib
import math

from blastune.core.counts import check_count
from blastune.documents.jobs import Workload
from blastune.errors import BlastuneError

__all__ = [
    "Workload",
    "KINDS",
    "DEFAULT_SIZES",
    "make_workload",
    "resolve_func",
    "build_task",
    "memory_bytes",
]

# Default sizes: one task takes a few tens of milliseconds on one core of a current CPU.
DEFAULT_SIZES = {"python": 500_000, "numpy": 1_000_000, "op": 300}
KINDS = ("python", "numpy")


def memory_bytes(w: Workload) -> int:
    """About the peak bytes one running task holds (0 for --func: unknown)."""
    if w.kind == "op":
        from blastune.measure.ops import get_op

        return get_op(w.name).memory_bytes(w.size, w.dtype)
    if w.kind == "numpy":
        return 16 * w.size  # the array and one ufunc temporary
    if w.kind == "python":
        return 48 * w.size  # the list, and the comprehension's list of float objects
    return 0


def make_workload(
    op: str | None = None,
    size: int | None = None,
    workload: str | None = None,
    func: str | None = None,
    dtype: str = "float64",
    lib: str = "numpy",
) -> Workload:
    """Check the user's choice in this process, so a bad one fails before any worker starts."""
    options = {"--op": op, "--workload": workload, "--func": func, "--dtype": dtype, "--lib": lib}
    for name, v in options.items():
        if isinstance(v, str) and not v.strip():
            raise BlastuneError(f"invalid {name} {v!r}: give a name (see 'blastune jobs --help')")
    given = [name for name in ("--op", "--workload", "--func") if options[name]]
    if len(given) > 1:
        raise BlastuneError(
            f"give only one of --op, --workload, --func (got {' and '.join(given)})"
        )
    if size is not None:
        size = check_count(size, "size", hi=2**62)
    if func:
        if size is not None:
            raise BlastuneError(
                "--size does not apply to --func (your function is called with the task index)"
            )
        resolve_func(func)
        return Workload("func", func, None, uses_blas=True)  # unknown code: it may well call BLAS
    if workload:
        if workload not in KINDS:
            raise BlastuneError(
                f"unknown workload {workload!r}: choose {' or '.join(KINDS)}, "
                "or use --op NAME / --func package.module:function"
            )
        return Workload(workload, workload, size or DEFAULT_SIZES[workload], uses_blas=False)
    from blastune.measure.ops import check_dtype, check_lib, get_op

    spec = get_op(op or "dot")  # one registry for sweep and jobs: unknown names fail alike

    check_dtype(spec, dtype)
    check_lib(lib)
    return Workload(
        "op", spec.name, size or DEFAULT_SIZES["op"], uses_blas=spec.blas, dtype=dtype, lib=lib
    )


def resolve_func(spec: str):
    """'package.module:function' -> the callable, or one line saying what is wrong."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise BlastuneError(f"invalid --func {spec!r}: use package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        raise BlastuneError(
            f"--func {spec}: cannot import {module_name!r} (no module named {missing!r}); "
            "it must be importable by worker processes: install it or add its "
            "directory to PYTHONPATH"
        ) from None
    except Exception as exc:  # the user's module failed while importing
        raise BlastuneError(
            f"--func {spec}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    except SystemExit as exc:  # a script that runs (and exits) when imported would end us silently
        raise BlastuneError(
            f"--func {spec}: importing {module_name!r} called sys.exit({exc.code!r}); put the "
            "script's own work under `if __name__ == '__main__':`"
        ) from None
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise BlastuneError(
                f"--func {spec}: module {module_name!r} has no attribute {attr!r}"
            ) from None
    if not callable(obj):
        raise BlastuneError(
            f"--func {spec}: {attr!r} is a {type(obj).__name__}, not a function: "
            "give a callable that takes the task index"
        )
    import inspect

    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # some builtins have no signature: let the first call tell
        return obj
    try:
        sig.bind(0)
    except TypeError:
        raise BlastuneError(
            f"--func {spec}: cannot be called with the task index: its signature is "
            f"{attr}{sig}; give a function of one argument"
        ) from None
    return obj


def _python_task(n: int):
    # The seed's f(): a list comprehension that never releases the GIL.
    def task(i):
        y = [1] * n
        return len([math.exp(v) for v in y])

    return task


def _numpy_task(n: int):
    # The seed's g(), made compute-bound: ufuncs on a large array release the GIL for the whole
    # loop, so threads can overlap; exp/sin keep it from being limited by memory bandwidth alone.
    import numpy as np

    def task(i):
        y = np.ones(n)
        for _ in range(3):
            np.exp(y, out=y)
            np.sin(y, out=y)
        return float(y[0])

    return task


def build_task(w: Workload):
    """The callable ``task(i)`` for this workload, built where it will run."""
    if w.kind == "python":
        return _python_task(w.size)
    if w.kind == "numpy":
        return _numpy_task(w.size)
    if w.kind == "func":
        return resolve_func(w.name)
    from blastune.measure.ops import get_op

    prepared = get_op(w.name).prepare(w.size, w.dtype, w.lib)
    return lambda i: prepared.fn(*prepared.args)
