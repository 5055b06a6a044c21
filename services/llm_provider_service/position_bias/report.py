"""The position-bias report: counts of first-position wins turned into shares and tests."""

from __future__ import annotations

from collections.abc import Iterable

from common_core.api_models import ModelPositionBias, PositionBiasReport
from services.llm_provider_service.models import PositionCounts
from services.llm_provider_service.position_bias.stats import (
    binomial_two_sided_p,
    wilson_interval,
)


def model_entry(counts: PositionCounts) -> ModelPositionBias:
    """One provider's model: its share of first-position wins with a 95% Wilson interval and
    the exact binomial p-value against 0.5. Raises `ValueError` for an entry without
    judgements (stores never hold one)."""
    n, wins = counts.judgements, counts.first_position_wins
    low, high = wilson_interval(wins, n)
    return ModelPositionBias(
        provider=counts.provider,
        model=counts.model,
        judgements=n,
        first_position_wins=wins,
        first_position_share=wins / n,
        ci95_low=low,
        ci95_high=high,
        p_value=binomial_two_sided_p(wins, n),
    )


def build_report(counts: Iterable[PositionCounts]) -> PositionBiasReport:
    return PositionBiasReport(models=[model_entry(c) for c in counts if c.judgements > 0])
