"""Estimated cost of a call from a per-model price table (USD per million tokens)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from common_core.api_models import TokenUsage

# (input, output) USD per 1M tokens, list prices at the time of writing; override or extend
# with LLM_PROVIDER_SERVICE_MODEL_PRICES. Unknown models get no estimate (null), never a guess.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "claude-opus-4-1": (15.0, 75.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "gpt-5": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5-nano": (0.05, 0.4),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.4, 1.6),
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
    "o3": (2.0, 8.0),
    "o4-mini": (1.1, 4.4),
    "gemini-2.5-pro": (1.25, 10.0),
    "gemini-2.5-flash": (0.3, 2.5),
    "gemini-2.5-flash-lite": (0.1, 0.4),
    "anthropic/claude-sonnet-4.5": (3.0, 15.0),
    "openai/gpt-5-mini": (0.25, 2.0),
    "google/gemini-2.5-flash": (0.3, 2.5),
    "mock-rater-1": (0.0, 0.0),
}


_DATED_SNAPSHOT = re.compile(r"^(.+)-(?:\d{8}|\d{4}-\d{2}-\d{2})$")


class PriceTable:
    """The defaults, with the configured overrides on top."""

    def __init__(self, overrides: Mapping[str, tuple[float, float]] | None = None) -> None:
        self._prices = {**DEFAULT_PRICES, **(overrides or {})}

    def estimate(self, model: str, usage: TokenUsage) -> float | None:
        """USD for this usage, or None when the model has no price.

        Vendors report dated snapshots (`claude-haiku-4-5-20251001`, `gpt-5-mini-2025-08-07`):
        an exact entry wins, else the entry the name is a dated snapshot of. Only a date
        suffix counts, so `gpt-5-pro` is never priced as `gpt-5`.
        """
        price = self._prices.get(model) or self._snapshot_price(model)
        if price is None:
            return None
        per_input, per_output = price
        cost = usage.prompt_tokens * per_input + usage.completion_tokens * per_output
        return round(cost / 1_000_000, 8)

    def _snapshot_price(self, model: str) -> tuple[float, float] | None:
        match = _DATED_SNAPSHOT.match(model)
        return self._prices.get(match.group(1)) if match else None
