"""The time budget of a run and its ETA: one rule for ``sweep`` (points) and ``jobs`` (batches).

A run gets ``seconds`` (None: no limit) counted on a monotonic clock from ``start``. Each session
asks, with its own estimate of the next unit, whether that unit fits; and it tells a person how
long the rest takes from the measured cost so far -- never 0:00 while work remains.
"""

from __future__ import annotations

import math
import time

# The unit in flight still has to finish: an ETA never reads below this while work remains.
MIN_ETA_S = 1.0


class Budget:
    """``seconds`` for a run (None: unlimited), from ``start()`` on ``clock``."""

    def __init__(self, seconds: float | None, clock=time.monotonic):
        self.seconds = seconds
        self.clock = clock
        self.started = clock()

    def start(self) -> None:
        self.started = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    @property
    def deadline(self) -> float:
        """The clock reading at which the budget is spent (CLOCK_MONOTONIC: one for every process
        of the machine, so a worker process may compare its own readings with it)."""
        return self.started + (math.inf if self.seconds is None else self.seconds)

    def left_s(self) -> float:
        return max(0.0, self.deadline - self.clock())

    def fits(self, cost_s: float) -> bool:
        """Does a unit that takes ``cost_s`` end within the budget?"""
        return self.elapsed() + cost_s <= (math.inf if self.seconds is None else self.seconds)


def is_seconds(value) -> bool:
    """A budget a run can keep: a finite number of seconds above 0 (not a bool; inf would be
    written to the results as Infinity, which is not JSON)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < math.inf


def eta_s(work_left_s: float, budget_left_s: float = math.inf) -> float:
    """Seconds until a run with work left ends: the session's estimate of that work, at most what
    the budget still allows, and never under ``MIN_ETA_S``."""
    return max(MIN_ETA_S, min(work_left_s, budget_left_s))


def eta_from_pace(elapsed_s: float, done: int, total: int, budget_s: float) -> float | None:
    """``eta_s`` for a run of ``total`` like units, ``done`` of them finished in ``elapsed_s``.

    ``None`` before the first unit finished (nothing measured yet: no honest figure) and 0 once
    every unit is done. Otherwise the pace so far times the units left -- but no unit starts after
    the budget is spent, so at most the budget left plus one more unit."""
    left = total - done
    if left <= 0:
        return 0.0
    if done <= 0:
        return None
    pace = elapsed_s / done
    return eta_s(pace * left, max(0.0, budget_s - elapsed_s) + pace)
