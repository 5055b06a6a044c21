"""GeminiBatchAPI as `BATCH_BUILDERS` builds it, with the real google-genai SDK over HTTP to
the fake upstream's Gemini batch jobs (`tests/support/fake_vendors/gemini_batch_wire.py`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from common_core.api_models import LLMConfigOverrides
from common_core.enums import ErrorCode, ReasoningEffort
from services.llm_provider_service.batch.models import (
    BatchCreateAmbiguousError,
    BatchCreateRefusedError,
    BatchState,
    RowOutcome,
)
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    ProviderBadRequestError,
    ProviderUnavailableError,
)
from services.llm_provider_service.protocols import BatchAPI
from services.llm_provider_service.providers.judgement import JUDGEMENT_SCHEMA
from services.llm_provider_service.providers.vendor_clients import VENDOR_BUILDERS
from services.llm_provider_service.settings import Settings
from tests.integration.providers.batch.gemini.gemini_support import (
    GOOGLE,
    MODEL,
    all_rows,
    by_prompt,
    created_requests,
    entries,
    prompt,
)
from tests.support.fake_vendors import FakeUpstream, camel_schema
from tests.support.fake_vendors.gemini_batch_wire import GeminiBatches, Outcome

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
    assert refused.value.capacity is (status == 429)  # a 400/413 is the entries'
    assert len(jobs.calls("create")) == 1
    assert jobs.jobs == []
