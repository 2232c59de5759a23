"""How a signal ends a sweep: see ``blastune.measure.signals`` (the same rule as ``jobs``)."""

from __future__ import annotations

from functools import partial

from blastune.measure.signals import Interrupted, StopState, stop_on_signals as _stop_on_signals

__all__ = ["SweepInterrupted", "StopState", "stop_on_signals"]


class SweepInterrupted(Interrupted):
    """A signal stopped the sweep; ``result`` holds the finished points (a ``SweepResult``)."""


stop_on_signals = partial(_stop_on_signals, SweepInterrupted)
