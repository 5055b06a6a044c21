"""`result_from_event` on result events the service really published: the same
`ComparisonResult` as the HTTP answer, and an error event as `ComparisonFailedError`."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from common_core.api_models import ComparisonResult
from common_core.client import (
    ComparisonFailedError,
    LLMProviderClient,
    ProviderFailedError,
    result_from_event,
)
from common_core.enums import QueueStatus
from common_core.events import EventEnvelope
from tests.fakes import RecordingEventDeps, RecordingPublisher
from tests.integration.client.conftest import Serve, comparison, set_mock_fault

RESULT_TYPE = "llm_provider.comparison_result.v1"
CALLBACK_TOPIC = "huleedu.test.results"
DEFAULT_TOPIC = "huleedu.llm_provider.comparison_result.v1"


async def result_event(publisher: RecordingPublisher, topic: str) -> EventEnvelope[Any]:
    async with asyncio.timeout(10):
        while True:
            for event_topic, envelope in publisher.events:
                if event_topic == topic and envelope.event_type == RESULT_TYPE:
                    return envelope
            await asyncio.sleep(0.02)


def assert_same_result(from_event: ComparisonResult, answered: ComparisonResult) -> None:
    for name in ComparisonResult.model_fields:
        assert getattr(from_event, name) == getattr(answered, name), name
    assert from_event == answered


@pytest.mark.parametrize(
    ("fields", "topic"),
    [
        ({"processing_mode": "immediate", "callback_topic": CALLBACK_TOPIC}, CALLBACK_TOPIC),
        ({"processing_mode": "async"}, DEFAULT_TOPIC),
    ],
    ids=["200-with-callback-topic", "queued"],
)
async def test_a_result_event_reads_as_the_http_result(
    serve: Serve, fields: dict[str, Any], topic: str
):
    publisher = RecordingPublisher()
    served = await serve(RecordingEventDeps(publisher), outbox_poll_interval_seconds=0.05)
    request = comparison(metadata={"essay_a_id": "a7", "cj_batch_id": 12}, **fields)

    async with LLMProviderClient(
        served.base_url, poll_interval=0.05, rng=random.Random(1)
    ) as client:
        answered = await client.compare(request)
        envelope = await result_event(publisher, topic)
        if fields["processing_mode"] == "async":
            status = await client.status(answered.request_id)
            assert status.result is not None
            assert_same_result(status.result, answered)

    wire = envelope.model_dump_json().encode()  # the Kafka record's value, as published
    assert "prompt_sha256" in envelope.data.request_metadata
    assert_same_result(result_from_event(wire), answered)
    assert result_from_event(wire.decode()) == result_from_event(envelope.model_dump(mode="json"))


async def test_an_error_event_raises_comparison_failed(serve: Serve):
    publisher = RecordingPublisher()
    served = await serve(RecordingEventDeps(publisher), outbox_poll_interval_seconds=0.05)
    await set_mock_fault(served.base_url, 1.0, "invalid_response")
    request = comparison(processing_mode="immediate", callback_topic=CALLBACK_TOPIC)

    async with LLMProviderClient(served.base_url, rng=random.Random(1)) as client:
        with pytest.raises(ProviderFailedError):
            await client.compare(request)
    envelope = await result_event(publisher, CALLBACK_TOPIC)

    with pytest.raises(ComparisonFailedError) as raised:
        result_from_event(envelope.model_dump_json())

    assert raised.value.code == "INVALID_PROVIDER_RESPONSE"
    assert raised.value.message
    assert raised.value.queue_id == envelope.data.request_id
    assert raised.value.final_status is QueueStatus.FAILED
    assert raised.value.correlation_id == envelope.correlation_id
