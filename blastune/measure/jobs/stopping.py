"""How a signal ends ``jobs``: see ``blastune.measure.signals`` (the same rule as ``sweep``).

The layout processes and their workers are ended and reaped, the finished batches kept (and saved
with status ``interrupted`` when there is an output file).
"""

from __future__ import annotations

from functools import partial

from blastune.measure.signals import Interrupted, stop_on_signals as _stop_on_signals

__all__ = ["JobsInterrupted", "stop_on_signals"]


class JobsInterrupted(Interrupted):
    """A signal stopped the run; ``result`` holds the finished batches (a ``JobsResult``) or None,
    ``saved_to`` the file they were saved to (or None)."""


stop_on_signals = partial(_stop_on_signals, JobsInterrupted)
