"""Timing statistics and the adaptive-repeat loop, driven by a scripted clock (exact, no real timing)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from blastune.measure import timing


class ScriptedClock:
    """A clock whose calls to ``fn`` take the durations given, in order (then the last one forever)."""

    def __init__(self, durations):
        self.now = 0.0
        self.durations = list(durations)
        self.calls = 0

    def __call__(self):
        return self.now

    def fn(self):
        d = self.durations[min(self.calls, len(self.durations) - 1)]
        self.calls += 1
        self.now += d


def test_quartiles_match_numpy_linear_percentiles():
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 8, 31):
        x = list(rng.exponential(size=n))
        q1, med, q3 = timing.quartiles(x)
        assert (q1, med, q3) == pytest.approx(tuple(np.percentile(x, [25, 50, 75])))


def test_relative_spread_formula_and_small_samples():
    x = [1.0, 1.0, 1.1, 1.2, 1.2]  # IQR 0.2, median 1.1
    expected = math.sqrt(math.pi / 2) * (0.2 / 1.3489795) / math.sqrt(5) / 1.1
    assert timing.spread(x) == pytest.approx(expected)
    assert timing.spread([1.0, 2.0]) is None  # cannot be judged from two samples
    assert timing.spread([3.0] * 10) == 0.0
    # more samples from the same distribution -> smaller standard error of the median
    rng = np.random.default_rng(1)
    few, many = list(rng.normal(1, 0.05, 30)), list(rng.normal(1, 0.05, 3000))
    assert timing.spread(many) < timing.spread(few) / 4  # sqrt(100) = 10 expected


def test_one_outlier_barely_moves_the_spread():
    base = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.01, 0.99]
    assert timing.spread(base + [5.0]) < 2 * timing.spread(base + [1.0])


def test_summary_fields():
    s = timing.summarize([3.0, 1.0, 2.0, 4.0])
    assert (s.median, s.min, s.max, s.repeats, s.mean) == (2.5, 1.0, 4.0, 4, 2.5)
    assert s.iqr == pytest.approx(s.q3 - s.q1)


def test_steady_calls_stop_at_min_repeats_with_the_target_met():
    clk = ScriptedClock([0.5])  # warm-up and every call take 0.5 s exactly
    m = timing.measure(clk.fn, clock=clk, min_repeats=5, budget=100, target_spread=0.02)
    assert m.stop == "target" and m.stats.repeats == 5 and m.loops == 1
    assert m.stats.median == 0.5 and not m.unstable
    assert clk.calls == 6  # one warm-up + five samples


def test_noisy_calls_run_until_the_budget_and_are_flagged():
    durations = [0.1] + [0.1 if i % 2 else 0.2 for i in range(1000)]
    clk = ScriptedClock(durations)
    m = timing.measure(clk.fn, clock=clk, min_repeats=3, budget=3.0, target_spread=0.001)
    assert m.stop == "budget" and m.unstable
    assert m.elapsed_s <= 3.0 + 0.2  # at most one sample past the budget
    assert m.stats.repeats > 3


def test_min_repeats_are_taken_even_past_the_budget():
    clk = ScriptedClock([2.0, 2.0, 2.4, 1.6, 2.2, 1.8, 2.0])
    m = timing.measure(clk.fn, clock=clk, min_repeats=5, budget=1.0, target_spread=0.0001)
    assert m.stats.repeats == 5 and m.stop == "budget"


def test_fast_calls_are_looped_inside_a_sample():
    clk = ScriptedClock([1e-5])
    m = timing.measure(clk.fn, clock=clk, min_repeats=5, budget=10, min_sample_time=0.02)
    assert m.loops == 2000
    assert m.stats.median == pytest.approx(1e-5)
    assert m.unstable is False


def test_measure_times_a_real_call():
    m = timing.measure(sum, (range(1000),), min_repeats=3, budget=0.5)
    assert 0 < m.stats.min <= m.stats.median <= m.stats.max < 0.01
    with pytest.raises(ValueError):
        timing.measure(sum, (range(3),), min_repeats=0)
