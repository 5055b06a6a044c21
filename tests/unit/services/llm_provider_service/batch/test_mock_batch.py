"""The mock's Batch API, and the embedded default serving batch requests with it end to end
through the container's wiring."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType, ProcessingMode, QueueStatus
from services.llm_provider_service.batch.engine import BatchEngine
from services.llm_provider_service.batch.models import (
    BatchEntry,
    BatchState,
    ProviderBatch,
    RowOutcome,
)
from services.llm_provider_service.di import make_container
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.protocols import RequestQueue
from services.llm_provider_service.providers.mock import MockProvider
from services.llm_provider_service.providers.mock_batch import MockBatchAPI
from tests.factories import FakeClock, make_job, make_request

PROMPT = ComparisonPrompt.plain(user_prompt="Essay A: x\n\nEssay B: y", system_prompt="Judge.")


def entries(n: int) -> list[BatchEntry]:
    return [BatchEntry(f"{i:032x}", PROMPT, LLMConfigOverrides()) for i in range(n)]


def mock_api(make_settings, clock: FakeClock, **settings) -> MockBatchAPI:
    section = make_settings(**settings).mock
    return MockBatchAPI(MockProvider(section, random.Random(7)), section, clock=clock)


async def test_a_mock_batch_ends_once_mock_batch_seconds_passed_with_a_fresh_row_each(
    make_settings,
):
    clock = FakeClock()
    api = mock_api(make_settings, clock, mock_batch_seconds=30)
    batch = await api.create("spill-1", "mock-rater-1", entries(3))

    assert (await api.poll([batch]))[batch.batch_id].state is BatchState.RUNNING
    clock.advance(30)
    assert (await api.poll([batch]))[batch.batch_id].state is BatchState.ENDED

    rows = [row async for row in api.rows(batch)]
    assert [row.custom_id for row in rows] == [e.custom_id for e in entries(3)]
    assert all(row.outcome is RowOutcome.SUCCEEDED for row in rows)
    ids = {row.judgement.provider_request_id for row in rows if row.judgement}
    assert len(ids) == 3  # three calls, not one answer shared
    assert await api.find("spill-1", "mock-rater-1", 3, batch.created_at) is None


async def test_a_batch_the_mock_does_not_know_fails_retryable(make_settings):
    api = mock_api(make_settings, FakeClock())
    unknown = ProviderBatch(LLMProviderType.MOCK, "gone", "mock-rater-1", datetime.now(UTC), 2)

    poll = (await api.poll([unknown]))["gone"]

    assert poll.state is BatchState.FAILED
    assert poll.retryable


async def test_injected_mock_errors_become_errored_rows(make_settings):
    api = mock_api(make_settings, FakeClock(), mock_error_rate=1.0)
    batch = await api.create("spill-1", "mock-rater-1", entries(2))

    rows = [row async for row in api.rows(batch)]

    assert [row.outcome for row in rows] == [RowOutcome.ERRORED] * 2
    assert all(row.error is not None and row.error.retryable for row in rows)


async def test_a_cancelled_then_deleted_mock_batch_is_gone(make_settings):
    api = mock_api(make_settings, FakeClock(), mock_batch_seconds=60)
    batch = await api.create("spill-1", "mock-rater-1", entries(1))
    await api.cancel(batch)
    assert (await api.poll([batch]))[batch.batch_id].state is BatchState.CANCELLED
    await api.delete(batch)
    assert (await api.poll([batch]))[batch.batch_id].state is BatchState.FAILED


async def test_the_embedded_default_serves_batch_requests_through_the_mock_batch(make_settings):
    settings = make_settings(batch_max_wait_seconds=0, mock_batch_seconds=0)
    container = make_container(settings)
    try:
        queue = await container.get(RequestQueue)
        engine = await container.get(BatchEngine)
        request = make_request(processing_mode=ProcessingMode.BATCH)
        jobs = [make_job(request=request) for _ in range(3)]  # replicates
        for job in jobs:
            await queue.enqueue(job, priority=5, ttl_seconds=3600)

        await engine.tick()  # fills and submits one batch
        await engine.tick()  # polls it: ended; ingests its rows

        records = [await queue.get(job.request_id) for job in jobs]
        assert [r.status for r in records if r] == [QueueStatus.COMPLETED] * 3
        results = [r.result for r in records if r and r.result]
        assert {res.model for res in results} == {settings.mock.default_model}
        assert len({res.provider_request_id for res in results}) == 3
        assert [res.request_id for res in results] == [job.request_id for job in jobs]
    finally:
        await container.close()
