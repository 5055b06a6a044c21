"""Fake vendor judges that answer from what the vendor was shown (`FakeUpstream.judge`).

Each takes the prompt text as the vendor received it and returns the judgement object a
vendor would send: `winner` ("Essay A" is the essay presented first), `justification`
naming both labels, and `confidence`.
"""

from __future__ import annotations

import math
import random
import threading
from typing import Any

from services.llm_provider_service.providers.ability_marker import abilities_in


def _answer(winner: str, confidence: int = 4) -> dict[str, Any]:
    loser = "Essay B" if winner == "Essay A" else "Essay A"
    return {
        "winner": winner,
        "justification": f"{winner} is better argued than {loser}.",
        "confidence": confidence,
    }


def first_presented_wins(text: str) -> dict[str, Any]:
    """A judge with total first-position bias: "Essay A" always wins."""
    return _answer("Essay A")


def higher_marker_wins(text: str) -> dict[str, Any]:
    """A perfect judge: the essay whose ability marker is higher wins, whichever it was shown
    as; the first marker in the text is the first-presented essay's. Needs two markers."""
    first, second = abilities_in(text)[:2]
    return _answer("Essay A" if first > second else "Essay B", confidence=5)


class BradleyTerryJudge:
    """A noisy judge: the first-presented essay wins with probability
    logistic(position_bias + θ_first - θ_second), abilities from the markers, fresh
    randomness per call from its own seeded generator. Counts what it decided."""

    def __init__(self, *, position_bias: float = 0.0, seed: int | None = 0) -> None:
        self.position_bias = position_bias
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # the fake upstream answers from its own thread
        self.calls = 0
        self.first_wins = 0

    def __call__(self, text: str) -> dict[str, Any]:
        found = [*abilities_in(text)[:2], 0.0, 0.0]
        p_first = 1.0 / (1.0 + math.exp(-(self.position_bias + found[0] - found[1])))
        with self._lock:
            first_won = self._rng.random() < p_first
            self.calls += 1
            self.first_wins += int(first_won)
        return _answer("Essay A" if first_won else "Essay B", confidence=3)
