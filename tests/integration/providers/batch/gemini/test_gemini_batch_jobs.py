"""GeminiBatchAPI's job-level calls (ends, cancel, delete, polling budget, an unreachable
vendor) and the fake's hold switch, with the real google-genai SDK over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from common_core.api_models import LLMConfigOverrides
from services.llm_provider_service.batch.models import (
    BatchAPIUnavailableError,
    BatchCreateRefusedError,
    BatchState,
    ProviderBatch,
)
from services.llm_provider_service.protocols import BatchAPI
from services.llm_provider_service.providers.batch_clients import BATCH_BUILDERS
from services.llm_provider_service.settings import Settings
from tests.integration.providers.batch.gemini.gemini_support import (
    GOOGLE,
    MODEL,
    all_rows,
    entries,
)
from tests.support.fake_vendors import FakeUpstream
from tests.support.fake_vendors.gemini_batch_wire import GeminiBatches
from tests.support.redis_server import free_port

# ---- batch-level ends, cancel, delete, polling budget ---------------------------------------


async def test_failed_expired_and_cancelled_jobs(api: BatchAPI, jobs: GeminiBatches) -> None:
    failed, expired, cancelled = [await api.create(f"sp-{i}", MODEL, entries(1)) for i in range(3)]
    jobs.fail_job(failed.batch_id)
    jobs.expire(expired.batch_id)
    await api.cancel(cancelled)

    polls = await api.poll([failed, expired, cancelled])

    assert polls[failed.batch_id].state is BatchState.FAILED
    assert polls[failed.batch_id].provider_status == "JOB_STATE_FAILED"
    assert polls[failed.batch_id].retryable  # google-genai does not say why: the vendor's
    assert polls[expired.batch_id].state is BatchState.EXPIRED
    assert polls[cancelled.batch_id].state is BatchState.CANCELLED
    assert len(jobs.calls("cancel")) == 1
    assert await all_rows(api, expired) == []


async def test_delete_reaches_the_vendor_and_a_gone_job_is_no_error(
    api: BatchAPI, jobs: GeminiBatches
) -> None:
    batch = await api.create("sp-6", MODEL, entries(1))
    jobs.end(batch.batch_id)

    await api.delete(batch)
    await api.delete(batch)
    await api.cancel(batch)  # nothing left to stop: no error

    assert jobs.jobs == []
    assert len(jobs.calls("delete")) == 2
    gone = (await api.poll([batch]))[batch.batch_id]
    assert (gone.state, gone.retryable) == (BatchState.FAILED, True)


async def test_many_open_batches_are_polled_with_the_list(
    api: BatchAPI, jobs: GeminiBatches
) -> None:
    batches = [await api.create(f"sp-{i}", MODEL, entries(1)) for i in range(5)]
    jobs.end(batches[2].batch_id)

    polls = await api.poll(batches)

    assert set(polls) == {b.batch_id for b in batches}
    assert polls[batches[2].batch_id].state is BatchState.ENDED
    assert polls[batches[0].batch_id].state is BatchState.RUNNING
    assert jobs.calls("get") == []
    assert len(jobs.calls("list")) == 1


# ---- the fake's hold switch and both API versions -------------------------------------------


async def test_a_held_create_waits_until_released(api: BatchAPI, jobs: GeminiBatches) -> None:
    jobs.hold("create")
    task = asyncio.create_task(api.create("sp-7", MODEL, entries(1)))
    assert await asyncio.to_thread(jobs.wait_held, "create", 5.0)
    assert len(jobs.jobs) == 1  # made, its answer held
    assert not task.done()
    jobs.release("create")
    batch = await task
    assert batch.batch_id == jobs.jobs[0]


async def test_the_fake_serves_batches_on_v1_too(
    fake: FakeUpstream, settings: Settings, jobs: GeminiBatches
) -> None:
    from services.llm_provider_service.providers.vendor_clients import gemini_client

    client, close = gemini_client(settings.provider_settings(GOOGLE))  # the SDK's default v1
    try:
        pager = await client.aio.batches.list()
    finally:
        await close()
    assert pager.page == []
    assert jobs.calls("list")[0].path == "/v1/batches"


def test_caps_and_models(api: BatchAPI) -> None:
    assert api.caps.max_items == 1_000
    assert api.caps.max_bytes == 18_000_000
    assert api.supports(MODEL)
    assert not api.supports("gpt-4o")
    assert api.model_for(LLMConfigOverrides()) == MODEL
    entry = entries(1)[0]
    assert api.entry_bytes(entry) > len(entry.prompt.user_prompt) + len(entry.prompt.system_prompt)


async def test_a_vendor_that_does_not_answer_is_unavailable(
    make_settings: Callable[..., Settings],
) -> None:
    unused_port = free_port()
    settings = make_settings(
        google_api_key="test-key",
        google_base_url=f"http://127.0.0.1:{unused_port}",
        google_timeout_seconds=2.0,
    )
    api, close = BATCH_BUILDERS[GOOGLE](settings.provider_settings(GOOGLE), settings)
    batch = ProviderBatch(GOOGLE, "batches/gone", MODEL, datetime.now(UTC), 1)
    try:
        with pytest.raises(BatchCreateRefusedError):  # never connected: nothing was made
            await api.create("sp-8", MODEL, entries(1))
        for call in (
            lambda: api.poll([batch]),
            lambda: api.poll([batch] * 4),
            lambda: all_rows(api, batch),
            lambda: api.cancel(batch),
            lambda: api.delete(batch),
            lambda: api.find("sp-8", MODEL, 1, datetime.now(UTC)),
        ):
            with pytest.raises(BatchAPIUnavailableError):
                await call()
    finally:
        await close()
