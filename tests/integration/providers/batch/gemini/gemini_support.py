"""What the Gemini batch tests share: prompts a judge can tell apart, entries, rows."""

from __future__ import annotations

import re
from typing import Any
from uuid import uuid4

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.models import (
    BatchEntry,
    BatchRow,
    ProviderBatch,
    custom_id_of,
)
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.protocols import BatchAPI
from tests.support.fake_vendors.gemini_batch_wire import GeminiBatches

GOOGLE = LLMProviderType.GOOGLE
MODEL = "gemini-2.5-flash"
CONFIDENCE = re.compile(r"confidence (\d)")


def prompt(i: int) -> ComparisonPrompt:
    return ComparisonPrompt.plain(
        system_prompt="You are an experienced teacher comparing two student essays.",
        user_prompt=f"Pair {i}: judge with confidence {i % 5 + 1}.\n\nEssay A:\nA.\n\nEssay B:\nB.",
    )


def by_prompt(text: str) -> dict[str, Any]:
    """A judge whose confidence is the one the prompt names: rows can be matched to entries."""
    match = CONFIDENCE.search(text)
    assert match is not None
    return {"winner": "Essay A", "justification": "Clearer.", "confidence": int(match.group(1))}


def entries(count: int, overrides: LLMConfigOverrides | None = None) -> list[BatchEntry]:
    return [
        BatchEntry(custom_id_of(uuid4()), prompt(i), overrides or LLMConfigOverrides())
        for i in range(count)
    ]


async def all_rows(api: BatchAPI, batch: ProviderBatch) -> list[BatchRow]:
    return [row async for row in api.rows(batch)]


def created_requests(jobs: GeminiBatches) -> list[dict[str, Any]]:
    body = jobs.calls("create")[-1].json
    requests: list[dict[str, Any]] = body["batch"]["inputConfig"]["requests"]["requests"]
    return requests
