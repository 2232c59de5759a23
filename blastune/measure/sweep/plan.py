"""Which points a sweep runs: the grid ops x sizes x dtypes x threads, validated and ordered."""

from __future__ import annotations

from dataclasses import dataclass, field

from blastune.core.counts import MAX_THREADS, check_count
from blastune.errors import BlastuneError
from blastune.measure.jobs.layouts import powers_up_to
from blastune.measure.ops import OPS, check_dtype, check_lib, check_memory, parse_ops, words


# the thread counts a sweep measures by default: 1, 2, 4, ... up to the usable cores, and the usable
# cores themselves -- the worker counts of jobs' default grid
default_threads = powers_up_to


@dataclass
class Plan:
    ops: list[str]
    sizes: list[int]
    threads: list[int]
    dtypes: list[str]
    lib: str
    specs: list[tuple[str, int, str]]  # (op, size, dtype) in run order
    # combinations `all` implied but an op cannot do
    skipped: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.specs) * len(self.threads)

    def points(self) -> list[tuple[str, int, str, int]]:
        """(op, size, dtype, threads) in run order: every thread count of one array set together."""
        return [(o, n, d, t) for (o, n, d) in self.specs for t in self.threads]


def check_size(size) -> int:
    return check_count(size, "size (the matrix order n)")


def _listed(value) -> list:
    """One value or many: 8, numpy.int64(8), 'dot' and [8, 16] are all fine."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)


def make_plan(ops="dot", sizes=(1000,), threads=None, dtypes=("float64",), lib="numpy") -> Plan:
    """Validate the grid and order it; every problem is one BlastuneError naming what is allowed."""
    from blastune.facts.cpu import usable_cores

    given = _listed(ops)
    op_names = parse_ops(given)
    # with `all`, skip the dtypes an op cannot take; when named, asking for them is an error
    explicit = "all" not in set(words(given))
    sizes = list(dict.fromkeys(check_size(s) for s in _listed(sizes)))
    if not sizes:
        raise BlastuneError("no size given: pass --size N (the matrix order), e.g. --size 1000")
    dtype_words = words(_listed(dtypes))
    if not dtype_words:
        raise BlastuneError("no dtype given: choose from float32, float64, complex64, complex128")
    dtypes = list(dict.fromkeys(check_dtype(None, d) for d in dtype_words))
    check_lib(lib)
    if lib == "scipy" or "norm_isf" in op_names:
        try:
            import scipy.linalg  # noqa: F401
            import scipy.stats  # noqa: F401
        except ImportError as exc:
            raise BlastuneError(
                f"scipy is not importable ({exc}): install scipy, or use --lib numpy "
                "without norm_isf"
            ) from None
    if threads is None:
        threads = default_threads(usable_cores()[0])
    threads = [check_count(t, "thread count", 1, MAX_THREADS) for t in _listed(threads)]
    if not threads:
        raise BlastuneError("no threads given: give one or more thread counts, e.g. 1,2,4")
    threads = sorted(dict.fromkeys(threads))
    specs, skipped = [], []
    for name in op_names:
        op = OPS[name]
        for d in dtypes:
            if d not in op.dtypes:
                if explicit:
                    check_dtype(op, d)  # raises: the user asked for exactly this
                skipped.append(f"{name} {d}")
                continue
            for n in sizes:
                check_memory(name, n, d)
                specs.append((name, n, d))
    if not specs:
        raise BlastuneError("nothing to run: no op takes the dtypes given")
    return Plan(op_names, sizes, threads, dtypes, lib, specs, skipped)
