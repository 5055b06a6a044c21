"""Cost estimates: priced models, dated snapshots, overrides, and null for the unknown."""

from __future__ import annotations

import pytest

from common_core.api_models import TokenUsage
from common_core.enums import LLMProviderType, ServedVia
from services.llm_provider_service.providers.price_list import DEFAULT_PRICES
from services.llm_provider_service.providers.pricing import ModelPrice, PriceTable
from services.llm_provider_service.settings import Settings

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


@pytest.mark.parametrize("model", ["gpt-5.1-ultra", "claude-sonnet-9-9", "someone/new-model"])
def test_unknown_models_get_no_estimate_never_a_guess(model: str):
    # "gpt-5.1-ultra" is not a dated snapshot of "gpt-5.1": only a date suffix counts.
    assert PriceTable().estimate(model, USAGE) is None
    assert model not in PriceTable()


def test_a_longer_name_is_its_own_model_not_a_snapshot():
    table = PriceTable()
    assert table.estimate("gpt-5-pro", USAGE) == pytest.approx(15.0 + 12.0)
    assert table.estimate("gpt-5", USAGE) == pytest.approx(1.25 + 1.0)


@pytest.mark.parametrize(
    "model",
    [
        "gpt-5.1",  # CJ Assessment's default
        "gpt-5.1-2025-11-13",
        *(Settings().provider_settings(p).default_model for p in LLMProviderType),
    ],
)
def test_the_consumer_and_service_defaults_are_priced(model: str):
    assert model in PriceTable()


def test_every_built_in_price_is_a_price():
    for model, values in DEFAULT_PRICES.items():
        price = ModelPrice.of(values)
        assert price.cache_read <= price.input, model
        assert min(price.cache_write_5m, price.cache_write_1h) >= price.input, model
        assert price.output >= price.input or model == "mock-rater-1", model


def test_anthropic_cache_reads_and_writes_are_priced_at_their_rates():
    # claude-sonnet-4-6: $3 in, $15 out, reads $0.30, 5-minute writes $3.75, 1-hour $6.
    usage = TokenUsage(
        prompt_tokens=1_000_000,
        completion_tokens=0,
        cached_prompt_tokens=400_000,
        cache_write_tokens=300_000,
        cache_write_1h_tokens=100_000,
    )
    plain, reads, five, hour = 300_000, 400_000, 200_000, 100_000
    expected = (plain * 3 + reads * 0.3 + five * 3.75 + hour * 6) / 1_000_000
    assert PriceTable().estimate("claude-sonnet-4-6", usage) == pytest.approx(expected)


def test_openai_cached_input_is_priced_at_its_rate():
    usage = TokenUsage(prompt_tokens=1_000_000, completion_tokens=0, cached_prompt_tokens=600_000)
    assert PriceTable().estimate("gpt-5.1", usage) == pytest.approx(0.4 * 1.25 + 0.6 * 0.125)


def test_two_number_overrides_price_cache_traffic_at_input():
    table = PriceTable({"house-model": (2.0, 4.0)})
    usage = TokenUsage(prompt_tokens=1_000_000, cached_prompt_tokens=500_000)
    assert table.estimate("house-model", usage) == pytest.approx(2.0)


@pytest.mark.parametrize("values", [(1.0,), (1.0, 2.0, 3.0), (1.0, -2.0), (1.0, float("nan"))])
def test_a_price_that_is_not_two_or_five_non_negative_numbers_is_refused(values):
    with pytest.raises(ValueError, match="price"):
        ModelPrice.of(values)


def test_overrides_add_and_replace_prices():
    table = PriceTable({"gpt-5-mini": (1.0, 1.0), "house-model": (2.0, 0.0)})
    assert table.estimate("gpt-5-mini", USAGE) == pytest.approx(1.0 + 0.1)
    assert table.estimate("house-model", USAGE) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("provider", "lane", "factor"),
    [
        (LLMProviderType.ANTHROPIC, ServedVia.BATCH, 0.5),
        (LLMProviderType.OPENAI, ServedVia.BATCH, 0.5),
        (LLMProviderType.GOOGLE, ServedVia.BATCH, 0.5),
        (LLMProviderType.OPENROUTER, ServedVia.BATCH, 0.5),
        (LLMProviderType.MOCK, ServedVia.BATCH, 0.5),
        (LLMProviderType.OPENAI, ServedVia.FLEX, 0.5),
        (LLMProviderType.GOOGLE, ServedVia.FLEX, 0.5),
        (LLMProviderType.ANTHROPIC, ServedVia.FLEX, 1.0),  # Anthropic sells no flex tier
        (LLMProviderType.OPENAI, ServedVia.REALTIME, 1.0),
    ],
)
def test_a_lane_costs_its_factor_of_the_standard_price(
    provider: LLMProviderType, lane: ServedVia, factor: float
):
    table = PriceTable({"m": [2.0, 10.0]})
    usage = TokenUsage(prompt_tokens=1_000_000, completion_tokens=100_000, total_tokens=1_100_000)

    assert table.estimate("m", usage) == 3.0
    assert table.estimate("m", usage, lane=lane, provider=provider) == 3.0 * factor
    assert table.estimate("unpriced", usage, lane=lane, provider=provider) is None
