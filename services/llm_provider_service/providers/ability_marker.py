"""The ability marker: how a synthetic essay tells a Bradley-Terry rater its true ability.

A marker is an HTML comment, `<!-- ability: +1.2345 -->`, anywhere in an essay's text. The
mock provider's `bradley_terry` rater reads the markers of the prompt it is *shown*, so the
first marker in the presented prompt belongs to the essay labelled "Essay A" (the one
presented first) and the second to "Essay B": swapping the essays swaps the abilities the
rater sees, which is what lets a test see server-side essay order work end to end.
"""

from __future__ import annotations

import math
import re

_MARKER = re.compile(r"<!--\s*ability:\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*-->")


def ability_marker(theta: float) -> str:
    """The marker of an essay of ability `theta` (logits). Raises `ValueError` if not finite."""
    if not math.isfinite(theta):
        raise ValueError(f"an ability must be finite, got {theta!r}")
    return f"<!-- ability: {theta:+.4f} -->"


def abilities_in(text: str) -> list[float]:
    """The abilities of the markers in `text`, in order of appearance."""
    return [float(value) for value in _MARKER.findall(text)]


def first_win_probability(text: str, position_bias: float) -> float:
    """P(the first-presented essay wins) = logistic(position_bias + θ_first - θ_second),
    with the first two markers of the presented `text`; a missing marker counts as 0."""
    found = [*abilities_in(text)[:2], 0.0, 0.0]
    return _logistic(position_bias + found[0] - found[1])


def confidence_for(probability: float) -> int:
    """A 1-5 confidence that grows with how one-sided the pair is: 1 + round(4·|2p - 1|)."""
    return min(5, max(1, 1 + round(4 * abs(2 * probability - 1))))


def _logistic(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
