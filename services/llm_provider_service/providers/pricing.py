"""Estimated cost of a call from a per-model price table (USD per million tokens).

Each model has five prices: input, output, cache reads, and cache writes at the 5-minute and
1-hour TTLs (Anthropic charges a premium to write its prompt cache; OpenAI and Gemini do
not, so their writes cost the input price). The built-in table is `DEFAULT_PRICES`
(`providers/price_list.py`); `MODEL_PRICES` adds or replaces entries.

A result served through a cheaper lane than a standard call (`ServedVia`) costs its
standard price times the lane's factor for its provider (`LANE_PRICE_FACTORS`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from common_core.api_models import TokenUsage
from common_core.enums import LLMProviderType, ServedVia
from services.llm_provider_service.providers.price_list import DEFAULT_PRICES, LANE_PRICE_FACTORS

_DATED_SNAPSHOT = re.compile(r"^(.+)-(?:\d{8}|\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens of each kind."""

    input: float
    output: float
    cache_read: float
    cache_write_5m: float
    cache_write_1h: float

    @classmethod
    def of(cls, values: Sequence[float]) -> ModelPrice:
        """From `[input, output]` (cache reads and writes then cost the input price: an
        estimate that errs high) or `[input, output, cache_read, cache_write_5m,
        cache_write_1h]`. Raises `ValueError` for another length or a negative or
        non-finite price."""
        if len(values) not in (2, 5):
            raise ValueError(
                "a price is [input, output] or [input, output, cache_read, cache_write_5m, "
                f"cache_write_1h] in USD per 1M tokens, got {len(values)} numbers"
            )
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"prices must be finite and >= 0, got {list(values)}")
        if len(values) == 2:
            return cls(values[0], values[1], values[0], values[0], values[0])
        return cls(*values)

    def cost(self, usage: TokenUsage) -> float:
        """USD for `usage`: each prompt token at the price of how it was read (from the
        cache, written to it at its TTL, or neither), each completion token at output."""
        writes_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
        writes_5m = usage.cache_write_tokens - writes_1h
        plain = max(0, usage.prompt_tokens - usage.cached_prompt_tokens - usage.cache_write_tokens)
        total = (
            plain * self.input
            + usage.cached_prompt_tokens * self.cache_read
            + writes_5m * self.cache_write_5m
            + writes_1h * self.cache_write_1h
            + usage.completion_tokens * self.output
        )
        return round(total / 1_000_000, 8)


class PriceTable:
    """The defaults, with the configured overrides on top."""

    def __init__(self, overrides: Mapping[str, Sequence[float]] | None = None) -> None:
        self._prices = {name: ModelPrice.of(v) for name, v in DEFAULT_PRICES.items()}
        self._prices.update({name: ModelPrice.of(v) for name, v in (overrides or {}).items()})

    def price(self, model: str) -> ModelPrice | None:
        """The price of `model`, or None when it has none.

        Vendors report dated snapshots (`claude-haiku-4-5-20251001`, `gpt-5-mini-2025-08-07`):
        an exact entry wins, else the entry the name is a dated snapshot of. Only a date
        suffix counts, so `gpt-5-pro` is never priced as `gpt-5`.
        """
        found = self._prices.get(model)
        if found is None and (match := _DATED_SNAPSHOT.match(model)):
            found = self._prices.get(match.group(1))
        return found

    def estimate(
        self,
        model: str,
        usage: TokenUsage,
        *,
        lane: ServedVia = ServedVia.REALTIME,
        provider: LLMProviderType | None = None,
    ) -> float | None:
        """USD for this usage through `lane` of `provider`, or None when the model has no
        price. The standard price times the lane's factor (`LANE_PRICE_FACTORS`); a lane
        the table has no factor for (or no provider) is priced as a standard call, an
        estimate that errs high."""
        price = self.price(model)
        if price is None:
            return None
        factor = LANE_PRICE_FACTORS.get(lane, {}).get(provider, 1.0) if provider else 1.0
        return round(price.cost(usage) * factor, 8)

    def __contains__(self, model: str) -> bool:
        return self.price(model) is not None
