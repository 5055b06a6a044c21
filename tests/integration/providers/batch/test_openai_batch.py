"""OpenAI's Batch API adapter, as `BATCH_BUILDERS` builds it, on the real openai SDK against the
fake's files + batches (`openai_batch_wire.py`), whose batches move only when the test says."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from datetime import UTC, datetime
from typing import Any

import pytest

from common_core.api_models import LLMConfigOverrides
from common_core.enums import ErrorCode, ReasoningEffort
from services.llm_provider_service.batch.models import (
    BatchAPIUnavailableError,
    BatchCreateAmbiguousError,
    BatchCreateRefusedError,
    BatchRow,
    BatchState,
    ProviderBatch,
    RowOutcome,
)
from services.llm_provider_service.errors import (
    ProviderBadRequestError,
    ProviderUnavailableError,
)
from services.llm_provider_service.protocols import BatchAPI
from services.llm_provider_service.providers.batch_clients import BATCH_BUILDERS
from services.llm_provider_service.settings import Settings
from tests.integration.providers.batch.conftest import OPENAI, entry, judge_by_marker
from tests.support.fake_vendors import FakeUpstream

MODEL = "gpt-5-mini"


def _input_lines(fake: FakeUpstream) -> list[dict[str, Any]]:
    upload = fake.openai_batches.controls.calls("upload")[-1]
    start = upload.body.index(b'{"custom_id"')
    data = upload.body[start : upload.body.rindex(b"}") + 1]
    return [json.loads(line) for line in data.splitlines()]


async def _rows(api: BatchAPI, batch) -> list[BatchRow]:
    return [row async for row in api.rows(batch)]


async def test_happy_path_every_row_is_its_own_entrys_judgement_in_any_order(
    openai_batch: BatchAPI, fake: FakeUpstream
) -> None:
    fake.judge = judge_by_marker
    entries = [entry(n) for n in range(8)]
    batch = await openai_batch.create("spill-1", MODEL, entries)
    batches = fake.openai_batches
    assert batches.batch(batch.batch_id)["status"] == "validating"
    assert (await openai_batch.poll([batch]))[batch.batch_id].state is BatchState.RUNNING

    assert batches.advance(batch.batch_id) == "in_progress"
    assert batches.advance(batch.batch_id) == "finalizing"
    batches.end(batch.batch_id)
    poll = (await openai_batch.poll([batch]))[batch.batch_id]
    assert (poll.state, poll.provider_status) == (BatchState.ENDED, "completed")

    rows = await _rows(openai_batch, batch)
    wanted = [e.custom_id for e in entries]
    assert [row.custom_id for row in rows] != wanted  # the fake shuffled them
    assert sorted(row.custom_id for row in rows) == sorted(wanted)
    for row in rows:
        number = next(n for n, e in enumerate(entries) if e.custom_id == row.custom_id)
        assert row.outcome is RowOutcome.SUCCEEDED
        assert row.judgement is not None
        assert row.judgement.justification == f"judged item-{number}"
        assert row.judgement.model == MODEL
        assert row.judgement.token_usage.prompt_tokens > 0
        assert (row.judgement.provider_request_id or "").startswith("chatcmpl-")
    assert batch.files == (batches.batch(batch.batch_id)["input_file_id"],)


async def test_upload_and_create_carry_the_tag_the_ttls_and_one_model_per_file(
    openai_batch: BatchAPI, fake: FakeUpstream
) -> None:
    entries = [entry(1), entry(2)]
    await openai_batch.create("spill-tag-7", MODEL, entries)
    upload = fake.openai_batches.controls.calls("upload")[0]
    assert b'name="purpose"\r\n\r\nbatch' in upload.body
    assert b'name="expires_after[seconds]"\r\n\r\n259200' in upload.body
    create = fake.openai_batches.controls.calls("create")[0].json
    assert create["endpoint"] == "/v1/chat/completions"
    assert create["completion_window"] == "24h"
    assert create["metadata"] == {"spill_id": "spill-tag-7"}
    assert create["output_expires_after"] == {"anchor": "created_at", "seconds": 259200}
    lines = _input_lines(fake)
    assert [line["custom_id"] for line in lines] == [e.custom_id for e in entries]
    assert {(line["method"], line["url"], line["body"]["model"]) for line in lines} == {
        ("POST", "/v1/chat/completions", MODEL)
    }


@pytest.mark.parametrize(
    "overrides",
    [
        LLMConfigOverrides(),
        LLMConfigOverrides(model_override="gpt-4o", temperature_override=0.3),
        LLMConfigOverrides(max_tokens_override=3000, reasoning_effort=ReasoningEffort.NONE),
    ],
)
async def test_an_entry_body_is_the_realtime_request_body(
    openai_batch: BatchAPI, realtime, fake: FakeUpstream, overrides: LLMConfigOverrides
) -> None:
    item = entry(3, overrides)
    await realtime[OPENAI].compare(item.prompt, item.overrides)
    sent = fake.last("openai").json
    await openai_batch.create("spill-2", openai_batch.model_for(overrides), [item])
    body = _input_lines(fake)[0]["body"]
    assert body == sent
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True


async def test_mixed_outcomes_map_to_rows_as_the_table_says(
    openai_batch: BatchAPI, fake: FakeUpstream
) -> None:
    kinds = [
        "succeeded",
        "errored_final",
        "errored_retryable",
        "rate_limited",
        "expired",
        "cancelled",
        "invalid",
        "refusal",
        "max_tokens",
        "missing",
        "duplicate",
    ]
    entries = [entry(n) for n in range(len(kinds))]
    batch = await openai_batch.create("spill-3", MODEL, entries)
    ids = {kind: e.custom_id for kind, e in zip(kinds, entries, strict=True)}
    fake.openai_batches.end(batch.batch_id, {ids[kind]: kind for kind in kinds})

    rows = await _rows(openai_batch, batch)
    by_id: dict[str, list[BatchRow]] = {}
    for row in rows:
        by_id.setdefault(row.custom_id, []).append(row)
    assert ids["missing"] not in by_id
    assert [r.outcome for r in by_id[ids["duplicate"]]] == [RowOutcome.SUCCEEDED] * 2
    assert by_id[ids["succeeded"]][0].outcome is RowOutcome.SUCCEEDED
    final = by_id[ids["errored_final"]][0]
    assert isinstance(final.error, ProviderBadRequestError)
    assert not final.error.retryable
    for kind in ("errored_retryable", "rate_limited"):
        row = by_id[ids[kind]][0]
        assert isinstance(row.error, ProviderUnavailableError)
        assert row.error.retryable
    for kind in ("expired", "cancelled"):
        assert by_id[ids[kind]][0].outcome is RowOutcome.NOT_RUN
    for kind in ("invalid", "refusal", "max_tokens"):
        row = by_id[ids[kind]][0]
        assert row.outcome is RowOutcome.ERRORED
        assert row.error is not None
        assert row.error.code == ErrorCode.INVALID_PROVIDER_RESPONSE
        assert not row.error.retryable
    assert "token limit" in str(by_id[ids["max_tokens"]][0].error)
    assert len(rows) == len(kinds)  # one missing, one twice


@pytest.mark.parametrize("kind", ["500_after", "drop_after"])
async def test_an_ambiguous_create_is_sent_once_and_found_by_its_tag(
    openai_batch: BatchAPI, fake: FakeUpstream, kind
) -> None:
    since = datetime.now(UTC)
    await openai_batch.create("spill-other", MODEL, [entry(9)])  # a batch find must skip
    fake.openai_batches.controls.break_create(kind)
    with pytest.raises(BatchCreateAmbiguousError):
        await openai_batch.create("spill-4", MODEL, [entry(1), entry(2)])
    assert len(fake.openai_batches.controls.calls("create")) == 2  # no SDK retry
    made = list(fake.openai_batches.batches)[-1]

    found = await openai_batch.find("spill-4", MODEL, 2, since)
    assert found is not None
    assert found.batch_id == made
    assert found.item_count == 2
    assert await openai_batch.find("spill-never", MODEL, 2, since) is None


@pytest.mark.parametrize(("status", "retry_after"), [(429, 7.0), (400, None), (413, None)])
async def test_a_refused_create_is_refused_once_and_leaves_no_input_file(
    openai_batch: BatchAPI, fake: FakeUpstream, status, retry_after
) -> None:
    header = "7" if retry_after else None
    fake.openai_batches.controls.refuse_create(status, retry_after=header)
    with pytest.raises(BatchCreateRefusedError) as refused:
        await openai_batch.create("spill-5", MODEL, [entry(1)])
    assert refused.value.retry_after == retry_after
    assert refused.value.capacity is (status == 429)  # a 400/413 is the entries'
    assert len(fake.openai_batches.controls.calls("create")) == 1
    assert fake.openai_batches.files == {}


async def test_validation_failure_blames_the_entry_on_its_line(
    openai_batch: BatchAPI, fake: FakeUpstream
) -> None:
    entries = [entry(1), entry(2, LLMConfigOverrides(model_override="gpt-4o")), entry(3)]
    batch = await openai_batch.create("spill-6", MODEL, entries)
    fake.openai_batches.advance(batch.batch_id)
    poll = (await openai_batch.poll([batch]))[batch.batch_id]
    assert (poll.state, poll.provider_status, poll.retryable) == (
        BatchState.FAILED,
        "failed",
        False,
    )
    assert set(poll.entry_errors) == {entries[1].custom_id}  # line 2: another model
    assert all(isinstance(e, ProviderBadRequestError) for e in poll.entry_errors.values())


async def test_a_failure_for_capacity_is_retryable(
    openai_batch: BatchAPI, fake: FakeUpstream
) -> None:
    batch = await openai_batch.create("spill-7", MODEL, [entry(1)])
    fake.openai_batches.fail(batch.batch_id, code="token_limit_exceeded")
    poll = (await openai_batch.poll([batch]))[batch.batch_id]
    assert (poll.state, poll.retryable, poll.entry_errors) == (BatchState.FAILED, True, {})
    assert "token_limit_exceeded" in (poll.error or "")


async def test_an_expired_batch_returns_what_it_finished_and_the_rest_not_run(
    openai_batch: BatchAPI, fake: FakeUpstream
) -> None:
    entries = [entry(1), entry(2), entry(3)]
    batch = await openai_batch.create("spill-8", MODEL, entries)
    fake.openai_batches.advance(batch.batch_id)
    fake.openai_batches.end(batch.batch_id, {entries[0].custom_id: "succeeded"}, "expired")
    poll = (await openai_batch.poll([batch]))[batch.batch_id]
    assert (poll.state, poll.provider_status) == (BatchState.ENDED, "expired")
    outcomes = {row.custom_id: row.outcome for row in await _rows(openai_batch, batch)}
    assert outcomes == {
        entries[0].custom_id: RowOutcome.SUCCEEDED,
        entries[1].custom_id: RowOutcome.NOT_RUN,
        entries[2].custom_id: RowOutcome.NOT_RUN,
    }


async def test_cancel_reaches_openai_and_delete_removes_every_file(
    openai_batch: BatchAPI, fake: FakeUpstream
) -> None:
    entries = [entry(1), entry(2)]
    batch = await openai_batch.create("spill-9", MODEL, entries)
    fake.openai_batches.advance(batch.batch_id)
    await openai_batch.cancel(batch)
    assert fake.openai_batches.batch(batch.batch_id)["status"] == "cancelling"
    fake.openai_batches.end(batch.batch_id, {entries[0].custom_id: "succeeded"}, "cancelled")
    assert len(fake.openai_batches.files) == 3  # input, output, error

    await openai_batch.delete(batch)
    assert fake.openai_batches.files == {}
    assert len(fake.openai_batches.controls.calls("file_delete")) == 3
    await openai_batch.delete(batch)  # already gone: no error


async def test_polling_many_batches_reads_the_list_not_each_batch(
    openai_batch: BatchAPI, fake: FakeUpstream
) -> None:
    made = [await openai_batch.create(f"spill-{n}", MODEL, [entry(n)]) for n in range(5)]
    fake.openai_batches.end(made[2].batch_id)
    polls = await openai_batch.poll(made)
    assert set(polls) == {b.batch_id for b in made}
    assert polls[made[2].batch_id].state is BatchState.ENDED
    assert fake.openai_batches.controls.calls("retrieve") == []
    assert len(fake.openai_batches.controls.calls("list")) == 1

    await openai_batch.poll(made[:2])
    assert len(fake.openai_batches.controls.calls("retrieve")) == 2


async def test_a_held_poll_waits_until_released_and_unreadable_results_are_unavailable(
    openai_batch: BatchAPI, fake: FakeUpstream
) -> None:
    batch = await openai_batch.create("spill-10", MODEL, [entry(1)])
    controls = fake.openai_batches.controls
    controls.hold("retrieve")
    poll = asyncio.create_task(openai_batch.poll([batch]))
    assert await asyncio.to_thread(controls.arrived("retrieve").wait, 10)
    assert not poll.done()
    controls.release("retrieve")
    assert (await poll)[batch.batch_id].state is BatchState.RUNNING

    fake.openai_batches.end(batch.batch_id)
    fake.openai_batches.files.clear()  # the output file is gone
    with pytest.raises(BatchAPIUnavailableError):
        await _rows(openai_batch, batch)


def test_caps_are_openais_below_the_setting(openai_batch: BatchAPI) -> None:
    assert openai_batch.caps.max_items == 50_000
    assert openai_batch.caps.max_bytes == 200 * 1024 * 1024 * 9 // 10
    assert openai_batch.entry_bytes(entry(1)) > 100
    assert openai_batch.model_for(LLMConfigOverrides()) == MODEL


async def test_an_unreachable_openai_refuses_the_upload_and_reads_are_unavailable(
    vendor_settings: Settings,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    config = dataclasses.replace(vendor_settings.provider_settings(OPENAI), base_url=dead)
    api, close = BATCH_BUILDERS[OPENAI](config, vendor_settings)
    batch = ProviderBatch(OPENAI, "batch_1", MODEL, datetime.now(UTC), 1, ("file-1",))
    try:
        with pytest.raises(BatchCreateRefusedError):  # the upload failed: no batch
            await api.create("spill-11", MODEL, [entry(1)])
        for call in (api.poll([batch]), api.cancel(batch), api.delete(batch), _rows(api, batch)):
            with pytest.raises(BatchAPIUnavailableError):
                await call
    finally:
        await close()
