"""Cells the terminal tables and the HTML report both show, written once: the same figure reads the
same in `blastune sweep`, `blastune jobs`, `blastune info` and in the report made from their files
(the report had lost svd's '~' and said 'runtime' where `info` says 'at run time')."""

from __future__ import annotations

NO_VALUE = "—"  # a figure that cannot be given

# how a library's thread count can be set (LibraryInfo.control)
CONTROL_TEXT = {
    "runtime": "at run time",
    "env": "env var before start",
    "fixed": "fixed at build",
    "unknown": "unknown (could not be queried)",
}


def control_text(lib) -> str:
    text = CONTROL_TEXT.get(lib.control, lib.control)
    if lib.control != "runtime" and lib.control_vars:
        text += f" ({lib.control_vars[0]})"
    return text


def threads_text(lib) -> str:
    if lib.num_threads is None:
        return "?"
    src = {"queried": "", "env": " (from env)", "build": " (build)"}.get(lib.threads_source, "")
    return f"{lib.num_threads}{src}"


def gflops_text(gflops: float | None, nominal: bool | None) -> str:
    """'~12.3' when the FLOP count is nominal (svd, eigh, qr: the work depends on the input)."""
    if gflops is None:
        return "-"
    return ("~" if nominal else "") + f"{gflops:.1f}"


_UNITS = (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9))


def time_unit(seconds) -> tuple[str, float]:
    """One unit for a whole column: the one its median value reads best in ('ms' for 2.1 .. 950 ms).
    A column that mixes '1.2 ms' and '830 us' makes the reader convert before comparing."""
    values = sorted(s for s in seconds if s is not None and s > 0)
    return _unit_of(values[len(values) // 2]) if values else ("s", 1.0)


def _unit_of(seconds: float) -> tuple[str, float]:
    return next(((u, k) for u, k in _UNITS if seconds >= k), _UNITS[-1])


def fmt_time(seconds: float | None) -> str:
    """A time in the unit it reads best in, three significant figures: '1.23 ms'."""
    if seconds is None:
        return "-"
    unit, scale = _unit_of(seconds)
    return f"{seconds / scale:.3g} {unit}"


def in_unit(seconds: float | None, scale: float) -> str:
    """A time in the column's unit, three significant figures (no exponent)."""
    if seconds is None:
        return "-"
    v = seconds / scale
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}" if v >= 0.001 else f"{v:.1e}"


def number(x, spec: str, suffix: str = "", missing: str = "-") -> str:
    """A figure in a table cell: ``format(x, spec) + suffix``, or ``missing`` where it is None.
    The one formatter for every table (terminal and HTML report)."""
    return missing if x is None else format(x, spec) + suffix


def flagged(text: str, name: str, flags) -> str:
    """A figure beyond its physical bound keeps its value but says it is not a fact: '105%!' (the
    reason is in the notes)."""
    return text + "!" if name in flags and text != "-" else text
