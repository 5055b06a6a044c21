"""AnthropicBatchAPI where the fake upstream cannot reach: a results stream cut midway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx2
import pytest

from common_core.enums import LLMProviderType
from services.llm_provider_service.batch.models import BatchAPIUnavailableError, ProviderBatch
from services.llm_provider_service.providers.anthropic_batch import AnthropicBatchAPI

BATCH = ProviderBatch(LLMProviderType.ANTHROPIC, "msgbatch_1", "m", datetime.now(UTC), 2)


class _CutStream:
    """Results whose connection breaks after the first line, as httpx2 reports it."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    async def __aiter__(self) -> AsyncIterator[Any]:
        yield SimpleNamespace(custom_id="a", result=SimpleNamespace(type="expired"))
        raise self._error


class _Batches:
    def __init__(self, error: Exception) -> None:
        self._error = error

    async def results(self, batch_id: str) -> _CutStream:
        return _CutStream(self._error)


@pytest.mark.parametrize(
    "error", [httpx2.RemoteProtocolError("peer closed"), httpx2.ReadTimeout("slow")]
)
async def test_a_results_stream_cut_midway_is_unavailable_after_the_rows_read(
    error: Exception,
) -> None:
    client: Any = SimpleNamespace(messages=SimpleNamespace(batches=_Batches(error)))
    api = AnthropicBatchAPI(client, default_model="m", prompt_caching=False, max_items=10)
    read: list[str] = []

    async def read_all() -> None:
        async for row in api.rows(BATCH):
            read.append(row.custom_id)

    with pytest.raises(BatchAPIUnavailableError):
        await read_all()

    assert read == ["a"]
