"""GeminiBatchAPI as `BATCH_BUILDERS` builds it, with the real google-genai SDK over HTTP to
the fake upstream's Gemini batch jobs (`tests/support/fake_vendors/gemini_batch_wire.py`)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from common_core.api_models import LLMConfigOverrides
from common_core.enums import ErrorCode, LLMProviderType, ReasoningEffort
from services.llm_provider_service.batch.models import (
    BatchAPIUnavailableError,
    BatchCreateAmbiguousError,
    BatchCreateRefusedError,
    BatchEntry,
    BatchRow,
    BatchState,
    ProviderBatch,
    RowOutcome,
    custom_id_of,
)
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    ProviderBadRequestError,
    ProviderUnavailableError,
)
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.protocols import BatchAPI
from services.llm_provider_service.providers.batch_clients import BATCH_BUILDERS
from services.llm_provider_service.providers.judgement import JUDGEMENT_SCHEMA
from services.llm_provider_service.providers.vendor_clients import VENDOR_BUILDERS
from services.llm_provider_service.settings import Settings
from tests.support.fake_vendors import FakeUpstream, camel_schema
from tests.support.fake_vendors.gemini_batch_wire import GeminiBatches, Outcome
from tests.support.redis_server import free_port

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


@pytest.fixture
def settings(fake: FakeUpstream, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        google_api_key="test-key",
        google_base_url=fake.google_base_url,
        google_timeout_seconds=5.0,
        google_default_model=MODEL,
        batch_flex_timeout_seconds=42.0,
    )


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[BatchAPI]:
    built, close = BATCH_BUILDERS[GOOGLE](settings.provider_settings(GOOGLE), settings)
    yield built
    await close()


@pytest.fixture
def jobs(fake: FakeUpstream) -> GeminiBatches:
    return fake.gemini_batches


async def all_rows(api: BatchAPI, batch: ProviderBatch) -> list[BatchRow]:
    return [row async for row in api.rows(batch)]


def created_requests(jobs: GeminiBatches) -> list[dict[str, Any]]:
    body = jobs.calls("create")[-1].json
    return body["batch"]["inputConfig"]["requests"]["requests"]


# ---- the happy path -------------------------------------------------------------------------


async def test_rows_out_of_order_each_name_its_own_judgement(
    fake: FakeUpstream, api: BatchAPI, jobs: GeminiBatches
) -> None:
    fake.judge = by_prompt
    sent = entries(6)
    batch = await api.create("sp-1", MODEL, sent)

    create = jobs.calls("create")[0]
    assert create.path == f"/v1beta/models/{MODEL}:batchGenerateContent"
    assert create.json["batch"]["displayName"] == "spill-sp-1"
    keys = [r["metadata"]["key"] for r in created_requests(jobs)]
    assert keys == [e.custom_id for e in sent]
    assert batch.batch_id == jobs.jobs[0]
    assert (batch.provider, batch.model, batch.item_count) == (GOOGLE, MODEL, 6)

    assert (await api.poll([batch]))[batch.batch_id].state is BatchState.RUNNING
    jobs.advance(batch.batch_id)
    assert (await api.poll([batch]))[batch.batch_id].state is BatchState.RUNNING
    jobs.end(batch.batch_id, shuffle=True)
    poll = (await api.poll([batch]))[batch.batch_id]
    assert (poll.state, poll.provider_status) == (BatchState.ENDED, "JOB_STATE_SUCCEEDED")

    rows = await all_rows(api, batch)
    assert [r.custom_id for r in rows] != keys  # shuffled by the fake
    assert sorted(r.custom_id for r in rows) == sorted(keys)
    for i, entry in enumerate(sent):
        (row,) = [r for r in rows if r.custom_id == entry.custom_id]
        assert row.outcome is RowOutcome.SUCCEEDED
        assert row.judgement is not None
        assert row.judgement.confidence == i % 5 + 1
        assert row.judgement.model == MODEL
        assert row.judgement.token_usage.prompt_tokens > 0
        assert row.judgement.token_usage.total_tokens > 0
        assert row.judgement.provider_request_id


async def test_each_entry_is_the_realtime_request_with_structured_output(
    fake: FakeUpstream, api: BatchAPI, jobs: GeminiBatches, settings: Settings
) -> None:
    overrides = LLMConfigOverrides(
        temperature_override=0.3, max_tokens_override=3000, reasoning_effort=ReasoningEffort.LOW
    )
    realtime, close = VENDOR_BUILDERS[GOOGLE](settings.provider_settings(GOOGLE), settings)
    try:
        await realtime.compare(prompt(0), overrides)
    finally:
        await close()
    realtime_body = fake.last("google").json

    await api.create("sp-2", MODEL, entries(2, overrides))

    (first, second) = created_requests(jobs)
    assert first["request"] == realtime_body
    assert second["request"]["generationConfig"] == realtime_body["generationConfig"]
    config = camel_schema(first["request"]["generationConfig"])
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == camel_schema(JUDGEMENT_SCHEMA)
    assert config["temperature"] == 0.3
    assert config["maxOutputTokens"] == 3000


# ---- per-entry outcomes ---------------------------------------------------------------------


async def test_mixed_outcomes_in_one_batch(api: BatchAPI, jobs: GeminiBatches) -> None:
    kinds: list[Outcome] = [
        "succeeded",
        "bad_request",
        "rate_limit",
        "server_error",
        "schema_violation",
        "max_tokens",
        "missing",
        "duplicate",
        "no_key",
    ]
    sent = entries(len(kinds))
    ids = {kind: entry.custom_id for kind, entry in zip(kinds, sent, strict=True)}
    batch = await api.create("sp-3", MODEL, sent)
    jobs.end(batch.batch_id, {ids[kind]: kind for kind in kinds})

    rows = await all_rows(api, batch)

    named = {row.custom_id: row for row in rows}
    assert ids["missing"] not in named
    assert ids["no_key"] not in named  # cannot be placed: its entry counts as missing
    assert [r.custom_id for r in rows].count(ids["duplicate"]) == 2
    assert named[ids["succeeded"]].outcome is RowOutcome.SUCCEEDED
    assert named[ids["duplicate"]].outcome is RowOutcome.SUCCEEDED

    bad = named[ids["bad_request"]]
    assert bad.outcome is RowOutcome.ERRORED
    assert isinstance(bad.error, ProviderBadRequestError)
    assert not bad.error.retryable
    for kind in ("rate_limit", "server_error"):
        row = named[ids[kind]]
        assert row.outcome is RowOutcome.ERRORED
        assert isinstance(row.error, ProviderUnavailableError)
        assert row.error.retryable
    invalid = named[ids["schema_violation"]]
    assert invalid.outcome is RowOutcome.ERRORED
    assert isinstance(invalid.error, InvalidProviderResponseError)
    assert invalid.error.code is ErrorCode.INVALID_PROVIDER_RESPONSE
    cut = named[ids["max_tokens"]]
    assert cut.outcome is RowOutcome.ERRORED
    assert cut.error is not None
    assert cut.error.code is ErrorCode.MAX_TOKENS_TOO_LOW
    assert not cut.error.retryable
    assert "max_tokens" in cut.error.message


# ---- create: refused, ambiguous, found again ------------------------------------------------


@pytest.mark.parametrize("after", ["server_error", "drop"])
async def test_an_ambiguous_create_is_found_by_its_display_name(
    api: BatchAPI, jobs: GeminiBatches, after: Any
) -> None:
    since = datetime.now(UTC)
    jobs.create_then(after)
    with pytest.raises(BatchCreateAmbiguousError):
        await api.create("sp-4", MODEL, entries(3))
    assert len(jobs.calls("create")) == 1  # never retried by the SDK
    await api.create("sp-other", MODEL, entries(1))

    found = await api.find("sp-4", MODEL, 3, since)

    assert found is not None
    assert found.batch_id == jobs.jobs[0]
    assert (found.model, found.item_count) == (MODEL, 3)
    assert await api.find("sp-never", MODEL, 3, since) is None


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"), [(429, "7", 7.0), (400, None, None), (413, None, None)]
)
async def test_a_refused_create_made_no_batch(
    api: BatchAPI, jobs: GeminiBatches, status: int, retry_after: str | None, expected: Any
) -> None:
    jobs.refuse_create(status, retry_after)
    with pytest.raises(BatchCreateRefusedError) as refused:
        await api.create("sp-5", MODEL, entries(2))
    assert refused.value.retry_after == expected
    assert len(jobs.calls("create")) == 1
    assert jobs.jobs == []


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
