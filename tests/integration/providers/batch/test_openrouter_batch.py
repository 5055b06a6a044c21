"""OpenRouter's Batch API adapter, as `BATCH_BUILDERS` builds it, on the openai SDK's low-level
calls against the fake's batches (`openrouter_batch_wire.py`)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import httpx2
import pytest

from common_core.api_models import LLMConfigOverrides
from common_core.enums import ErrorCode, ReasoningEffort
from services.llm_provider_service.batch.models import (
    BatchAPIUnavailableError,
    BatchCreateAmbiguousError,
    BatchCreateRefusedError,
    BatchRow,
    BatchState,
    RowOutcome,
)
from services.llm_provider_service.errors import (
    ProviderBadRequestError,
    ProviderUnavailableError,
)
from services.llm_provider_service.protocols import BatchAPI
from services.llm_provider_service.providers.batch_clients import BATCH_BUILDERS
from services.llm_provider_service.settings import Settings
from tests.integration.providers.batch.conftest import OPENROUTER, entry, judge_by_marker
from tests.support.fake_vendors import FakeUpstream

MODEL = "anthropic/claude-sonnet-4.5"


async def _rows(api: BatchAPI, batch) -> list[BatchRow]:
    return [row async for row in api.rows(batch)]


async def test_happy_path_rows_out_of_order_with_per_row_usage(
    openrouter_batch: BatchAPI, fake: FakeUpstream
) -> None:
    fake.judge = judge_by_marker
    entries = [entry(n) for n in range(6)]
    batch = await openrouter_batch.create("spill-1", MODEL, entries)
    batches = fake.openrouter_batches
    assert (await openrouter_batch.poll([batch]))[batch.batch_id].state is BatchState.RUNNING
    batches.advance(batch.batch_id)
    batches.end(batch.batch_id)
    poll = (await openrouter_batch.poll([batch]))[batch.batch_id]
    assert (poll.state, poll.provider_status) == (BatchState.ENDED, "completed")

    rows = await _rows(openrouter_batch, batch)
    assert [r.custom_id for r in rows] != [e.custom_id for e in entries]
    assert sorted(r.custom_id for r in rows) == sorted(e.custom_id for e in entries)
    for row in rows:
        number = next(n for n, e in enumerate(entries) if e.custom_id == row.custom_id)
        assert row.judgement is not None
        assert row.judgement.justification == f"judged item-{number}"
        assert row.judgement.model == MODEL
        assert row.judgement.token_usage.total_tokens > 0
        assert (row.judgement.provider_request_id or "").startswith("gen-")


@pytest.mark.parametrize(
    "overrides",
    [
        LLMConfigOverrides(),
        LLMConfigOverrides(model_override="meta/llama-x", temperature_override=0.2),
        LLMConfigOverrides(
            model_override="openai/gpt-5-mini", reasoning_effort=ReasoningEffort.HIGH
        ),
    ],
)
async def test_the_create_body_puts_endpoint_and_model_first_and_entries_as_realtime(
    openrouter_batch: BatchAPI, realtime, fake: FakeUpstream, overrides: LLMConfigOverrides
) -> None:
    item = entry(4, overrides)
    await realtime[OPENROUTER].compare(item.prompt, item.overrides)
    sent = fake.last("openrouter").json
    model = openrouter_batch.model_for(overrides)
    await openrouter_batch.create("spill-2", model, [item])

    raw = fake.openrouter_batches.controls.calls("create")[0].body
    assert raw.index(b'"endpoint"') < raw.index(b'"model"') < raw.index(b'"requests"')
    create = json.loads(raw)
    assert (create["endpoint"], create["model"]) == ("/v1/chat/completions", model)
    assert create["requests"] == [{"custom_id": item.custom_id, "body": sent}]


async def test_the_fake_refuses_requests_before_model_as_openrouter_does(
    fake: FakeUpstream,
) -> None:
    body = b'{"requests":[],"endpoint":"/v1/chat/completions","model":"m"}'
    async with httpx2.AsyncClient() as client:
        answer = await client.post(f"{fake.openrouter_base_url}/batches", content=body)
    assert answer.status_code == 400


async def test_mixed_outcomes_map_to_rows_as_the_table_says(
    openrouter_batch: BatchAPI, fake: FakeUpstream
) -> None:
    kinds = ["succeeded", "errored_final", "errored_retryable", "expired", "invalid"]
    kinds += ["missing", "duplicate"]
    entries = [entry(n) for n in range(len(kinds))]
    batch = await openrouter_batch.create("spill-3", MODEL, entries)
    ids = {kind: e.custom_id for kind, e in zip(kinds, entries, strict=True)}
    fake.openrouter_batches.end(batch.batch_id, {ids[kind]: kind for kind in kinds})

    by_id: dict[str, list[BatchRow]] = {}
    for row in await _rows(openrouter_batch, batch):
        by_id.setdefault(row.custom_id, []).append(row)
    assert ids["missing"] not in by_id
    assert len(by_id[ids["duplicate"]]) == 2
    assert by_id[ids["succeeded"]][0].outcome is RowOutcome.SUCCEEDED
    assert isinstance(by_id[ids["errored_final"]][0].error, ProviderBadRequestError)
    assert isinstance(by_id[ids["errored_retryable"]][0].error, ProviderUnavailableError)
    assert by_id[ids["expired"]][0].outcome is RowOutcome.NOT_RUN
    invalid = by_id[ids["invalid"]][0]
    assert invalid.error is not None
    assert invalid.error.code == ErrorCode.INVALID_PROVIDER_RESPONSE


@pytest.mark.parametrize("kind", ["500_after", "drop_after"])
async def test_an_ambiguous_create_is_sent_once_and_found_by_model_count_and_time(
    openrouter_batch: BatchAPI, fake: FakeUpstream, kind
) -> None:
    since = datetime.now(UTC)
    await openrouter_batch.create("spill-a", MODEL, [entry(1)])  # another count
    fake.openrouter_batches.controls.break_create(kind)
    with pytest.raises(BatchCreateAmbiguousError):
        await openrouter_batch.create("spill-b", MODEL, [entry(2), entry(3)])
    assert len(fake.openrouter_batches.controls.calls("create")) == 2
    made = list(fake.openrouter_batches.batches)[-1]
    found = await openrouter_batch.find("spill-b", MODEL, 2, since)
    assert found is not None
    assert found.batch_id == made
    assert await openrouter_batch.find("spill-b", "other/model", 2, since) is None
    assert await openrouter_batch.find("spill-b", MODEL, 2, since, frozenset({made})) is None


async def test_a_refused_create_carries_retry_after(
    openrouter_batch: BatchAPI, fake: FakeUpstream
) -> None:
    fake.openrouter_batches.controls.refuse_create(429, retry_after="30")
    with pytest.raises(BatchCreateRefusedError) as refused:
        await openrouter_batch.create("spill-4", MODEL, [entry(1)])
    assert refused.value.retry_after == 30.0
    assert len(fake.openrouter_batches.controls.calls("create")) == 1


@pytest.mark.parametrize(
    ("end", "state"),
    [
        ("fail", BatchState.FAILED),
        ("expired", BatchState.EXPIRED),
        ("cancelled", BatchState.CANCELLED),
    ],
)
async def test_batch_level_endings_have_no_rows(
    openrouter_batch: BatchAPI, fake: FakeUpstream, end, state
) -> None:
    batch = await openrouter_batch.create("spill-5", MODEL, [entry(1)])
    if end == "fail":
        fake.openrouter_batches.fail(batch.batch_id, "Rate limit: too many queued batches")
    else:
        fake.openrouter_batches.end(batch.batch_id, status=end)
    poll = (await openrouter_batch.poll([batch]))[batch.batch_id]
    assert poll.state is state
    assert poll.retryable is (end == "fail")  # a rate limit is OpenRouter's capacity
    assert await _rows(openrouter_batch, batch) == []


async def test_cancel_sends_nothing_and_delete_waits_for_a_terminal_batch(
    openrouter_batch: BatchAPI, fake: FakeUpstream
) -> None:
    batch = await openrouter_batch.create("spill-6", MODEL, [entry(1)])
    await openrouter_batch.cancel(batch)
    assert fake.openrouter_batches.controls.calls("cancel") == []
    with pytest.raises(BatchAPIUnavailableError):
        await openrouter_batch.delete(batch)  # 409: not terminal
    fake.openrouter_batches.end(batch.batch_id)
    await openrouter_batch.delete(batch)
    assert batch.batch_id not in fake.openrouter_batches.batches
    await openrouter_batch.delete(batch)  # already gone: no error


async def test_polling_many_batches_reads_the_list_not_each_batch(
    openrouter_batch: BatchAPI, fake: FakeUpstream
) -> None:
    made = [await openrouter_batch.create(f"s-{n}", MODEL, [entry(n)]) for n in range(4)]
    fake.openrouter_batches.end(made[0].batch_id)
    polls = await openrouter_batch.poll(made)
    assert set(polls) == {b.batch_id for b in made}
    assert polls[made[0].batch_id].state is BatchState.ENDED
    assert fake.openrouter_batches.controls.calls("retrieve") == []
    assert len(fake.openrouter_batches.controls.calls("list")) == 1


async def test_the_beta_base_path_works_too(vendor_settings: Settings, fake: FakeUpstream) -> None:
    config = vendor_settings.provider_settings(OPENROUTER)
    beta = dataclasses.replace(config, base_url=f"{fake.base_url}/api/beta")
    api, close = BATCH_BUILDERS[OPENROUTER](beta, vendor_settings)
    try:
        batch = await api.create("spill-7", MODEL, [entry(1)])
        await api.poll([batch])
    finally:
        await close()
    paths = {call.path for call in fake.openrouter_batches.controls.requests}
    assert paths == {"/api/beta/batches", f"/api/beta/batches/{batch.batch_id}"}


def test_caps_are_openrouters(openrouter_batch: BatchAPI) -> None:
    assert openrouter_batch.caps.max_items == 5_000
    assert openrouter_batch.caps.max_bytes == 200 * 1024 * 1024 * 9 // 10
