"""AnthropicBatchAPI on the real anthropic SDK against the fake Message Batches over HTTP:
what each entry sends, and how each results row is read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest

from common_core.api_models import LLMConfigOverrides
from common_core.enums import ErrorCode, LLMProviderType, ReasoningEffort
from services.llm_provider_service.batch.models import (
    BatchAPIUnavailableError,
    BatchState,
    RowOutcome,
)
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    ProviderBadRequestError,
    ProviderUnavailableError,
)
from services.llm_provider_service.protocols import BatchAPI
from services.llm_provider_service.providers.anthropic_provider import AnthropicProvider
from services.llm_provider_service.providers.judgement import TOOL_NAME
from tests.integration.providers.batch.anthropic_batch_harness import (
    MODEL,
    all_rows,
    built,
    entries,
    ids,
    judge_by_name,
    settings_for,
)
from tests.support.fake_vendors import FakeUpstream
from tests.support.fake_vendors.anthropic_batch_lines import Outcome


@pytest.fixture
async def api(fake: FakeUpstream) -> AsyncIterator[BatchAPI]:
    async for built_api in built(fake, batch_max_items=250):
        yield built_api


async def test_the_builder_makes_the_anthropic_batch_api_with_its_caps(api: BatchAPI) -> None:
    assert api.provider is LLMProviderType.ANTHROPIC
    assert api.caps.max_items == 250  # the setting, below Anthropic's 100,000
    assert api.caps.max_bytes == 230_400_000  # 90 % of 256 MB
    assert api.model_for(LLMConfigOverrides()) == MODEL
    assert api.model_for(LLMConfigOverrides(model_override="claude-other")) == "claude-other"
    assert api.supports(MODEL)


async def test_the_cap_on_items_is_anthropics_when_the_setting_is_higher(
    fake: FakeUpstream,
) -> None:
    async for big in built(fake, batch_max_items=500_000):
        assert big.caps.max_items == 100_000


async def test_rows_come_out_of_order_each_with_its_own_judgement(
    fake: FakeUpstream, api: BatchAPI
) -> None:
    fake.judge = judge_by_name
    sent = entries(5)

    batch = await api.create("spill-1", MODEL, sent)
    (batch_id,) = fake.anthropic_batches.ids
    assert (batch.batch_id, batch.model, batch.item_count) == (batch_id, MODEL, 5)
    fake.anthropic_batches.end(batch_id)
    rows = await all_rows(api, batch)

    assert [row.custom_id for row in rows] != ids(sent)  # the fake shuffles
    assert sorted(row.custom_id for row in rows) == sorted(ids(sent))
    by_id = {row.custom_id: row for row in rows}
    for n, entry in enumerate(sent):
        row = by_id[entry.custom_id]
        assert row.outcome is RowOutcome.SUCCEEDED
        assert row.judgement is not None
        assert row.judgement.justification == f"Pair {n}."
        assert row.judgement.model == MODEL
        usage = row.judgement.token_usage
        assert usage.prompt_tokens > 0
        assert usage.completion_tokens > 0
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        assert row.judgement.provider_request_id
        assert row.judgement.provider_request_id.startswith("msg_")


@pytest.mark.parametrize(
    "overrides",
    [
        LLMConfigOverrides(),
        LLMConfigOverrides(
            model_override="claude-other", temperature_override=0.2, max_tokens_override=300
        ),
        LLMConfigOverrides(reasoning_effort=ReasoningEffort.MEDIUM, temperature_override=0.3),
    ],
    ids=["defaults", "overrides", "thinking"],
)
async def test_each_entry_is_the_realtime_request_for_the_same_prompt(
    fake: FakeUpstream, api: BatchAPI, overrides: LLMConfigOverrides
) -> None:
    settings = settings_for(fake)
    config = settings.provider_settings(LLMProviderType.ANTHROPIC)
    client = anthropic.AsyncAnthropic(
        api_key="test-key", base_url=fake.anthropic_base_url, max_retries=0
    )
    realtime = AnthropicProvider(client, config, prompt_caching=settings.anthropic.prompt_caching)
    (entry,) = entries(1, overrides)
    try:
        await realtime.compare(entry.prompt, overrides)
    finally:
        await client.close()
    realtime_body = fake.last("anthropic").json

    await api.create("spill-1", api.model_for(overrides), [entry])

    (create,) = fake.anthropic_batches.calls("create")
    assert create.json == {"requests": [{"custom_id": entry.custom_id, "params": realtime_body}]}
    params: dict[str, Any] = create.json["requests"][0]["params"]
    assert params["tools"][0]["name"] == TOOL_NAME  # structured output: the judgement tool
    if overrides.reasoning_effort is None:
        assert params["tool_choice"] == {"type": "tool", "name": TOOL_NAME}


async def test_entry_bytes_count_what_the_create_sends(fake: FakeUpstream, api: BatchAPI) -> None:
    sent = entries(3)

    await api.create("spill-1", MODEL, sent)

    (create,) = fake.anthropic_batches.calls("create")
    counted = sum(api.entry_bytes(entry) for entry in sent)
    assert len(create.body) <= counted + len(b'{"requests":[]}')
    assert counted <= len(create.body) + 3 * 8  # what the SDK's whitespace may add or not


async def test_mixed_outcomes_in_one_batch_are_each_their_own_row(
    fake: FakeUpstream, api: BatchAPI
) -> None:
    names: list[Outcome] = [
        "succeeded", "errored", "retryable", "overloaded", "expired", "canceled",
        "missing", "duplicate", "schema_invalid", "max_tokens",
    ]  # fmt: skip
    sent = entries(len(names))
    outcome = dict(zip(names, ids(sent), strict=True))
    batch = await api.create("spill-1", MODEL, sent)
    fake.anthropic_batches.end(batch.batch_id, {cid: name for name, cid in outcome.items()})

    rows = await all_rows(api, batch)

    by_id: dict[str, list[Any]] = {}
    for row in rows:
        by_id.setdefault(row.custom_id, []).append(row)
    assert outcome["missing"] not in by_id
    assert len(by_id[outcome["duplicate"]]) == 2
    assert all(r.outcome is RowOutcome.SUCCEEDED for r in by_id[outcome["duplicate"]])
    assert len(rows) == len(names)  # one missing, one twice

    def only(name: str) -> Any:
        (row,) = by_id[outcome[name]]  # type: ignore[index]
        return row

    assert only("succeeded").outcome is RowOutcome.SUCCEEDED
    final = only("errored")
    assert final.outcome is RowOutcome.ERRORED
    assert isinstance(final.error, ProviderBadRequestError)
    assert not final.error.retryable
    assert "invalid_request_error" in final.error.message
    for name in ("retryable", "overloaded"):
        row = only(name)
        assert row.outcome is RowOutcome.ERRORED
        assert isinstance(row.error, ProviderUnavailableError)
        assert row.error.retryable
    assert only("expired").outcome is RowOutcome.NOT_RUN
    assert only("canceled").outcome is RowOutcome.NOT_RUN
    invalid = only("schema_invalid")
    assert invalid.outcome is RowOutcome.ERRORED
    assert isinstance(invalid.error, InvalidProviderResponseError)
    assert invalid.error.code is ErrorCode.INVALID_PROVIDER_RESPONSE
    assert invalid.error.spent is not None  # billed at the batch price all the same
    cut = only("max_tokens")
    assert cut.outcome is RowOutcome.ERRORED
    assert cut.error is not None
    assert not cut.error.retryable
    assert cut.error.code is ErrorCode.MAX_TOKENS_TOO_LOW
    assert "max_tokens" in cut.error.message


async def test_params_anthropic_refuses_while_processing_are_final_errors(
    fake: FakeUpstream, api: BatchAPI
) -> None:
    # Thinking needs a budget below max_tokens: validated only once the batch runs.
    overrides = LLMConfigOverrides(reasoning_effort=ReasoningEffort.LOW)
    (entry,) = entries(1, overrides)
    batch = await api.create("spill-1", MODEL, [entry])
    sent = fake.anthropic_batches.batch(batch.batch_id).requests[0]["params"]
    sent["max_tokens"] = sent["thinking"]["budget_tokens"]
    fake.anthropic_batches.end(batch.batch_id)

    (row,) = await all_rows(api, batch)

    assert row.outcome is RowOutcome.ERRORED
    assert isinstance(row.error, ProviderBadRequestError)


async def test_the_rows_of_a_batch_still_running_cannot_be_read(
    fake: FakeUpstream, api: BatchAPI
) -> None:
    batch = await api.create("spill-1", MODEL, entries(2))

    with pytest.raises(BatchAPIUnavailableError):
        await all_rows(api, batch)
    assert (await api.poll([batch]))[batch.batch_id].state is BatchState.RUNNING
