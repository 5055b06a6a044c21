"""Cost estimates: priced models, dated snapshots, overrides, and null for the unknown."""

from __future__ import annotations

import pytest

from common_core.api_models import TokenUsage
from services.llm_provider_service.providers.pricing import PriceTable

USAGE = TokenUsage(prompt_tokens=1_000_000, completion_tokens=100_000, total_tokens=1_100_000)


def test_a_priced_model_costs_input_plus_output():
    assert PriceTable().estimate("gpt-5-mini", USAGE) == pytest.approx(0.25 + 0.2)


@pytest.mark.parametrize(
    ("reported", "listed"),
    [("claude-haiku-4-5-20251001", "claude-haiku-4-5"), ("gpt-5-mini-2025-08-07", "gpt-5-mini")],
)
def test_a_dated_snapshot_is_priced_as_its_model(reported: str, listed: str):
    table = PriceTable()
    assert table.estimate(reported, USAGE) == table.estimate(listed, USAGE)
    assert table.estimate(reported, USAGE) is not None


@pytest.mark.parametrize("model", ["gpt-5-pro", "claude-sonnet-4-6", "someone/new-model"])
def test_unknown_models_get_no_estimate_never_a_guess(model: str):
    assert PriceTable().estimate(model, USAGE) is None


def test_overrides_add_and_replace_prices():
    table = PriceTable({"gpt-5-mini": (1.0, 1.0), "house-model": (2.0, 0.0)})
    assert table.estimate("gpt-5-mini", USAGE) == pytest.approx(1.0 + 0.1)
    assert table.estimate("house-model", USAGE) == pytest.approx(2.0)
