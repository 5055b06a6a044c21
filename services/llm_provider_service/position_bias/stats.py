"""The statistics of the position-bias report, in plain Python (no scipy in the service).

A first-position share is a binomial proportion: `wins` of `n` randomized judgements went to
the essay presented first. `wilson_interval` bounds it; `binomial_two_sided_p` tests it
against the 0.5 of a rater without position bias.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile
# Terms of a binomial tail smaller than this share of the running sum change nothing in a
# double; the sum walks away from the tail's largest term and stops there.
_NEGLIGIBLE = 1e-17
# Up to this many judgements the tail is summed in exact integers (at most a few hundred
# big-integer additions); beyond, in floating point from its largest term.
_EXACT_UP_TO = 1000


def wilson_interval(wins: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of the proportion `wins / n` (95% by default).

    Unlike the Wald interval it stays inside [0, 1] and keeps its coverage near 0 and 1.
    Raises `ValueError` unless 0 <= wins <= n and n > 0.
    """
    _check(wins, n)
    if n == 0:
        raise ValueError("an interval needs at least one judgement")
    share = wins / n
    z2 = z * z
    centre = (share + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(share * (1 - share) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # At 0 and n the interval touches its end exactly; rounding would leave it a hair away.
    low = 0.0 if wins == 0 else max(0.0, centre - half)
    high = 1.0 if wins == n else min(1.0, centre + half)
    return low, high


def binomial_two_sided_p(wins: int, n: int) -> float:
    """The exact two-sided p-value of `wins` in `n` against a fair coin (p = 0.5).

    The distribution is symmetric, so the p-value is twice the smaller tail, capped at 1:
    what `scipy.stats.binomtest(wins, n, 0.5).pvalue` gives. Exact (then rounded once to a
    double) up to 1,000 judgements; beyond, within about 1e-8 relative, the tail summed
    from its largest term outwards in log space.
    """
    _check(wins, n)
    if n == 0:
        return 1.0
    low = min(wins, n - wins)
    if n <= _EXACT_UP_TO:
        return min(1.0, 2 * _exact_lower_tail(low, n) / (1 << n))  # int / int: rounded once
    return min(1.0, 2.0 * _lower_tail_half(low, n))


def _exact_lower_tail(k: int, n: int) -> int:
    """Sum of C(n, i) for i <= k, in integers: each term from the last, C(n, i + 1) =
    C(n, i) · (n - i) / (i + 1), exact in integer division."""
    term = total = 1
    for i in range(k):
        term = term * (n - i) // (i + 1)
        total += term
    return total


def _lower_tail_half(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), with k <= n / 2."""
    # log C(n, k) - n log 2: the largest term of the tail, since terms grow towards n / 2.
    log_term = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2)
    term = 1.0
    total = 0.0
    i = k
    while i >= 0:
        total += term
        # C(n, i - 1) / C(n, i) = i / (n - i + 1)
        term *= i / (n - i + 1)
        i -= 1
        if term < total * _NEGLIGIBLE:
            break
    return math.exp(log_term + math.log(total))


def _check(wins: int, n: int) -> None:
    if n < 0 or not 0 <= wins <= n:
        raise ValueError(f"need 0 <= wins <= n, got wins={wins}, n={n}")
