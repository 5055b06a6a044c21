"""The Anthropic Batch API as the service builds it (`BATCH_BUILDERS`), aimed at the fake
upstream, and the entries its tests send."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import uuid4

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.models import BatchEntry, BatchRow, custom_id_of
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.protocols import BatchAPI
from services.llm_provider_service.providers.batch_clients import BATCH_BUILDERS
from services.llm_provider_service.settings import Settings, load_settings
from tests.support.fake_vendors import FakeUpstream

MODEL = "claude-test-default"


def settings_for(fake: FakeUpstream, **values: Any) -> Settings:
    defaults: dict[str, Any] = {
        "environment": "testing",
        "anthropic_api_key": "test-key",
        "anthropic_base_url": fake.anthropic_base_url,
        "anthropic_default_model": MODEL,
        "anthropic_timeout_seconds": 5.0,
    }
    return load_settings(**{**defaults, **values})


async def built(fake: FakeUpstream, **values: Any) -> AsyncIterator[BatchAPI]:
    """The Anthropic `BatchAPI` from `BATCH_BUILDERS`, closed afterwards."""
    settings = settings_for(fake, **values)
    provider = LLMProviderType.ANTHROPIC
    api, close = BATCH_BUILDERS[provider](settings.provider_settings(provider), settings)
    try:
        yield api
    finally:
        await close()


def prompt(n: int) -> ComparisonPrompt:
    """A prompt that names its number (`judge_by_name` answers with it)."""
    return ComparisonPrompt.plain(
        system_prompt="You are an experienced teacher comparing two student essays.",
        user_prompt=f"Pair {n}.\n\nEssay A:\nShort and clear.\n\nEssay B:\nLong, vague.",
    )


def entries(count: int, overrides: LLMConfigOverrides | None = None) -> list[BatchEntry]:
    return [
        BatchEntry(custom_id_of(uuid4()), prompt(n), overrides or LLMConfigOverrides())
        for n in range(count)
    ]


def judge_by_name(text: str) -> dict[str, Any]:
    """Justifies with the pair's name from the prompt, so a row shows whose answer it is."""
    name = next(line for line in text.splitlines() if line.startswith("Pair "))
    return {"winner": "Essay B", "justification": name, "confidence": 4}


async def all_rows(api: BatchAPI, batch: Any) -> list[BatchRow]:
    return [row async for row in api.rows(batch)]


def ids(sent: Sequence[BatchEntry]) -> list[str]:
    return [entry.custom_id for entry in sent]
