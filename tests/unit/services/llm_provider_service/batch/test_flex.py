"""The flex lane: batch requests of a provider that sells flex are first flex calls; a
refusal or a timeout sends them into a batch, never to a full-price call."""

from __future__ import annotations

import asyncio

import pytest

from common_core.enums import LLMProviderType, QueueStatus
from services.llm_provider_service.batch.flex import FlexProviders
from services.llm_provider_service.batch.models import BatchRow, RowOutcome, custom_id_of
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    ProviderUnavailableError,
)
from tests.fakes import ScriptedProvider, judgement
from tests.support.batch_rig import BatchRig, build_batch_rig

MOCK = LLMProviderType.MOCK


def refused() -> ProviderUnavailableError:
    return ProviderUnavailableError(MOCK, "flex capacity", reason="rate_limited", status=429)


@pytest.fixture
def flex() -> ScriptedProvider:
    return ScriptedProvider(default_model="scripted-1")


@pytest.fixture
def rig(make_settings, flex: ScriptedProvider) -> BatchRig:
    settings = make_settings(
        queue_lease_seconds=900,
        batch_lease_seconds=900,
        batch_max_wait_seconds=30,
        batch_flex_enabled=True,
        batch_flex_timeout_seconds=0.2,
    )
    return build_batch_rig(settings, flex=FlexProviders({MOCK: flex}))


async def test_a_flex_answer_completes_the_request_without_a_batch(rig, flex):
    jobs = await rig.enqueue(2)

    await rig.submit()
    await rig.engine.flex.idle()

    assert await rig.statuses(jobs) == [QueueStatus.COMPLETED] * 2
    assert len(flex.calls) == 2
    assert rig.api.calls.count("create") == 0
    assert rig.path.provider.calls == []  # no full-price call
    assert rig.events("request_started") == {j.request_id: 1 for j in jobs}
    assert rig.events("request_completed") == {j.request_id: 1 for j in jobs}


async def test_a_flex_refusal_sends_the_request_into_the_next_batch(rig, flex):
    flex.script = [refused()]
    [job] = await rig.enqueue(1)

    await rig.submit()
    await rig.engine.flex.idle()
    assert await rig.statuses([job]) == [QueueStatus.PROCESSING]

    await rig.step()
    fake = rig.api.only_batch()
    assert [e.custom_id for e in fake.entries] == [custom_id_of(job.request_id)]
    rig.api.end(
        fake.batch.batch_id,
        [BatchRow(custom_id_of(job.request_id), RowOutcome.SUCCEEDED, judgement=judgement())],
    )
    await rig.step()

    assert await rig.statuses([job]) == [QueueStatus.COMPLETED]
    assert rig.path.provider.calls == []
    assert (await rig.record(job.request_id)).attempts == 1  # one claim, flex then batch


async def test_a_flex_call_that_times_out_goes_into_the_batch(rig, flex):
    flex.gate = asyncio.Event()  # never set: the flex call never answers
    [job] = await rig.enqueue(1)

    await rig.submit()
    await rig.engine.flex.idle()
    await rig.step()

    assert [e.custom_id for e in rig.api.only_batch().entries] == [custom_id_of(job.request_id)]
    assert rig.path.provider.calls == []


async def test_a_final_flex_error_fails_the_request(rig, flex):
    flex.script = [InvalidProviderResponseError(MOCK, "not the judgement schema")]
    [job] = await rig.enqueue(1)

    await rig.submit()
    await rig.engine.flex.idle()

    record = await rig.record(job.request_id)
    assert record.status is QueueStatus.FAILED
    assert record.error is not None
    assert record.error.code == "INVALID_PROVIDER_RESPONSE"
    assert rig.api.calls.count("create") == 0


async def test_without_batch_flex_enabled_the_flex_adapter_is_never_called(make_settings, flex):
    settings = make_settings(batch_max_wait_seconds=30, batch_flex_enabled=False)
    rig = build_batch_rig(settings, flex=FlexProviders({MOCK: flex}))
    await rig.enqueue(1)

    await rig.submit()

    assert flex.calls == []
    assert rig.api.calls.count("create") == 1
