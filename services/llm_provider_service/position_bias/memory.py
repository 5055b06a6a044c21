"""`InMemoryPositionBiasStore`: the position-bias counts of this process only."""

from __future__ import annotations

from common_core.enums import LLMProviderType
from services.llm_provider_service.models import POSITION_BIAS_MAX_MODELS, PositionCounts


class InMemoryPositionBiasStore:
    """Counts in one process's memory, lost on restart; for the embedded default."""

    def __init__(self, max_models: int = POSITION_BIAS_MAX_MODELS) -> None:
        self._max_models = max_models
        self._counts: dict[tuple[LLMProviderType, str], list[int]] = {}

    async def record(self, provider: LLMProviderType, model: str, *, first_won: bool) -> None:
        entry = (provider, model)
        counts = self._counts.get(entry)
        if counts is None:
            if len(self._counts) >= self._max_models:
                return
            counts = self._counts[entry] = [0, 0]
        counts[0] += 1
        counts[1] += int(first_won)

    async def counts(self) -> list[PositionCounts]:
        return [
            PositionCounts(provider, model, judgements, first_wins)
            for (provider, model), (judgements, first_wins) in sorted(self._counts.items())
        ]
