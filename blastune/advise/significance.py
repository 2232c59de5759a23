"""Is b faster than a? Judged from the raw samples, with the three guards a fair comparison needs.

1. **A test, not a threshold.** Mann–Whitney U (two-sided) on the two sets of samples: no
   normality assumed, robust to the odd slow sample a timer always has.
2. **Many points, one family.** A comparison of 12 points makes 12 tests; at p < 0.05 each, one
   in two quiet comparisons would call some point "faster" by chance. Holm's step-down correction
   keeps the chance of *any* false verdict below ``ALPHA``.
3. **Practically the same is the same.** Two runs of one sweep on one quiet machine differ with
   every sample on one side -- clock, memory placement, cache state are fixed within a run and
   change between runs: a percent or two for points of a tenth of a second, 6-9% for points under
   a millisecond (measured here: dot 200 at 0.35 ms read 0.354 and 0.334 ms in two runs, inv 200
   0.99 and 1.08 ms). That is real but not a difference between the two setups. A ratio of medians
   within ``EQUIVALENCE`` (±10%) is "not significant" whatever the p-value.

Too few samples to ever reach significance (Mann–Whitney with 3 and 3 samples cannot go below
p = 0.1) is said as such, with the number of repeats that would do.
"""

from __future__ import annotations

import math

ALPHA = 0.05
EQUIVALENCE = 0.10


def min_p_value(n_a: int, n_b: int) -> float:
    """The smallest two-sided p the exact Mann–Whitney test can give with these sample counts:
    every sample of one side below every sample of the other, 2 / C(n_a + n_b, n_a)."""
    if n_a < 1 or n_b < 1:
        return 1.0
    return min(1.0, 2 / math.comb(n_a + n_b, n_a))


def mann_whitney_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided Mann–Whitney U p-value; None with an empty side."""
    if not a or not b:
        return None
    from scipy.stats import mannwhitneyu

    if len(set(a) | set(b)) == 1:  # every sample identical: no evidence of any difference
        return 1.0
    p = float(mannwhitneyu(a, b, alternative="two-sided", method="auto").pvalue)
    return p if math.isfinite(p) else None


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values (same order as given): reject where adjusted < ALPHA."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def repeats_needed(m: int, alpha: float = ALPHA) -> int:
    """Samples per side at which the exact test can pass Holm's strictest step (alpha / m)."""
    n = 2
    while min_p_value(n, n) >= alpha / max(m, 1) and n < 60:
        n += 1
    return n


def judge(
    ratio: float | None,
    n_a: int,
    n_b: int,
    p: float | None,
    p_adj: float | None,
    m: int,
    alpha: float = ALPHA,
    band: float = EQUIVALENCE,
) -> tuple[str, str]:
    """The verdict for one point -- b relative to a (``ratio`` = b's median / a's median) -- and its
    reason. Verdicts: faster | slower | not significant | too few samples."""
    if ratio is None:
        return "not significant", "no ratio: a median is zero"
    if min_p_value(n_a, n_b) >= alpha or p is None:
        need = repeats_needed(1, alpha)
        return (
            "too few samples",
            f"{n_a} and {n_b} samples cannot reach p < {alpha:g}: "
            f"measure at least {need} repeats a side",
        )
    if abs(ratio - 1) <= band:
        return "not significant", f"within ±{band:.0%}: practically the same"
    if p_adj is None:  # outside the judged family (a disturbed point): the raw p, uncorrected
        p_adj, m = p, 1
    if p_adj >= alpha:
        why = f"p = {p:.2g}" + (
            f", {p_adj:.2g} after Holm's correction over {m} points" if m > 1 else ""
        )
        if min_p_value(n_a, n_b) * m >= alpha:
            why += (
                f"; {n_a} and {n_b} samples cannot pass it over {m} points: measure at least "
                f"{repeats_needed(m, alpha)} repeats a side"
            )
        return "not significant", why
    word = "faster" if ratio < 1 else "slower"
    return word, f"p = {p:.2g}" + (f" ({p_adj:.2g} after Holm over {m} points)" if m > 1 else "")
