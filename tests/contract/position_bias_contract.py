"""The `PositionBiasStore` contract: one behaviour suite every store must pass.

A harness module star-imports this and defines `store_factory(max_models)`, which returns a
fresh, empty store keeping at most `max_models` entries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from common_core.enums import LLMProviderType
from services.llm_provider_service.models import PositionCounts
from services.llm_provider_service.protocols import PositionBiasStore

StoreFactory = Callable[[int], PositionBiasStore]
OPENAI, MOCK = LLMProviderType.OPENAI, LLMProviderType.MOCK


async def test_a_new_store_reports_nothing(store_factory: StoreFactory) -> None:
    assert await store_factory(10).counts() == []


async def test_judgements_and_first_position_wins_are_counted_per_provider_and_model(
    store_factory: StoreFactory,
) -> None:
    store = store_factory(10)
    for first_won in (True, True, False):
        await store.record(OPENAI, "gpt-5-mini", first_won=first_won)
    await store.record(OPENAI, "gpt-4.1", first_won=False)
    await store.record(MOCK, "mock-rater-1", first_won=True)

    assert await store.counts() == [
        PositionCounts(MOCK, "mock-rater-1", 1, 1),
        PositionCounts(OPENAI, "gpt-4.1", 1, 0),
        PositionCounts(OPENAI, "gpt-5-mini", 3, 2),
    ]


async def test_model_names_are_kept_exactly(store_factory: StoreFactory) -> None:
    store = store_factory(10)
    odd = 'anthropic/claude:beta|"quoted" ünïcode ["json"]'
    await store.record(LLMProviderType.OPENROUTER, odd, first_won=True)
    assert await store.counts() == [PositionCounts(LLMProviderType.OPENROUTER, odd, 1, 1)]


async def test_entries_beyond_the_cap_are_not_counted_but_known_ones_still_are(
    store_factory: StoreFactory,
) -> None:
    store = store_factory(2)
    await store.record(MOCK, "a", first_won=True)
    await store.record(MOCK, "b", first_won=False)
    await store.record(MOCK, "c", first_won=True)  # a third model: refused
    await store.record(MOCK, "a", first_won=False)

    assert await store.counts() == [
        PositionCounts(MOCK, "a", 2, 1),
        PositionCounts(MOCK, "b", 1, 0),
    ]


async def test_concurrent_records_are_all_counted(store_factory: StoreFactory) -> None:
    store = store_factory(10)
    for burst in range(5):  # bursts of 60: a client's connection pool bounds concurrency
        await asyncio.gather(
            *(store.record(MOCK, "m", first_won=(burst * 60 + i) % 3 == 0) for i in range(60))
        )
    assert await store.counts() == [PositionCounts(MOCK, "m", 300, 100)]
