"""Fixtures of the Batch API tests: each vendor's `BatchAPI` as `BATCH_BUILDERS` builds it,
its realtime adapter as `VENDOR_BUILDERS` builds it (to compare bodies), both on the real SDK
aimed at the session's fake upstream (`fake`, clean per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import uuid4

import pytest

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.models import BatchEntry, custom_id_of
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.protocols import BatchAPI, LLMProvider
from services.llm_provider_service.providers.batch_clients import BATCH_BUILDERS, FLEX_BUILDERS
from services.llm_provider_service.providers.vendor_clients import VENDOR_BUILDERS
from services.llm_provider_service.settings import Settings
from tests.support.fake_vendors import FakeUpstream

OPENAI = LLMProviderType.OPENAI
OPENROUTER = LLMProviderType.OPENROUTER


def judge_by_marker(text: str) -> dict[str, Any]:
    """The fake's judge: answers name the prompt's `item-<n>` marker, so a row's judgement
    shows which entry it was made for."""
    marker = next(word for word in text.split() if word.startswith("item-"))
    winner = "Essay A" if int(marker.removeprefix("item-")) % 2 == 0 else "Essay B"
    return {"winner": winner, "justification": f"judged {marker}", "confidence": 4}


def entry(number: int, overrides: LLMConfigOverrides | None = None) -> BatchEntry:
    prompt = ComparisonPrompt.plain(
        system_prompt="You are an experienced teacher comparing two student essays.",
        user_prompt=f"Which is better? item-{number}\n\nEssay A:\nShort.\n\nEssay B:\nLong.",
    )
    return BatchEntry(custom_id_of(uuid4()), prompt, overrides or LLMConfigOverrides())


@pytest.fixture
def vendor_settings(make_settings: Callable[..., Settings], fake: FakeUpstream) -> Settings:
    return make_settings(
        openai_api_key="sk-test",
        openai_base_url=fake.openai_base_url,
        openai_timeout_seconds=5.0,
        openrouter_api_key="sk-or-test",
        openrouter_base_url=fake.openrouter_base_url,
        openrouter_timeout_seconds=5.0,
        batch_max_items=100_000,
        batch_flex_timeout_seconds=0.5,
    )


async def _built(table: dict[Any, Any], provider: LLMProviderType, settings: Settings) -> Any:
    return table[provider](settings.provider_settings(provider), settings)


@pytest.fixture
async def openai_batch(vendor_settings: Settings) -> AsyncIterator[BatchAPI]:
    api, close = await _built(BATCH_BUILDERS, OPENAI, vendor_settings)
    yield api
    await close()


@pytest.fixture
async def openrouter_batch(vendor_settings: Settings) -> AsyncIterator[BatchAPI]:
    api, close = await _built(BATCH_BUILDERS, OPENROUTER, vendor_settings)
    yield api
    await close()


@pytest.fixture
async def realtime(
    vendor_settings: Settings,
) -> AsyncIterator[dict[LLMProviderType, LLMProvider]]:
    built = {p: await _built(VENDOR_BUILDERS, p, vendor_settings) for p in (OPENAI, OPENROUTER)}
    yield {provider: adapter for provider, (adapter, _) in built.items()}
    for _, close in built.values():
        await close()


@pytest.fixture
async def openai_flex(vendor_settings: Settings) -> AsyncIterator[LLMProvider]:
    adapter, close = await _built(FLEX_BUILDERS, OPENAI, vendor_settings)
    yield adapter
    await close()
