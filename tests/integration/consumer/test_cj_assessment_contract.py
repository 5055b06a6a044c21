"""CJ Assessment as deployed works unchanged: its request body as sent today is accepted (202
under DEFAULT_PROCESSING_MODE=async), and every result event the service can publish passes
the validation of its callback handler (`tests/contract/huleedu_consumer.py`).

The Kafka tests run the real OpenAI SDK against the fake upstream and publish to the real
broker; the others capture events with a recording publisher, to cover every kind quickly.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from common_core.events import EventEnvelope
from tests.contract.huleedu_consumer import HuleEduErrorCode, accepts, cj_request
from tests.fakes import RecordingEventDeps, RecordingPublisher
from tests.integration.conftest import StartApp
from tests.support.fake_vendors import (
    FakeUpstream,
    clean_fake_upstream,  # noqa: F401
    fake_upstream,  # noqa: F401
)
from tests.support.kafka_broker import TansuBroker, consume, create_topics
from tests.support.processes import poll_until

pytestmark = pytest.mark.timeout(90)
COMPARISON = "/api/v1/comparison"
RESULT_TYPE = "llm_provider.comparison_result.v1"
CJ_TOPIC = "huleedu.llm_provider.comparison_result.v1"
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")
VENDORS = {
    "openai": ("gpt-5.1", "openai_base_url"),
    "anthropic": ("claude-sonnet-4-6", "anthropic_base_url"),
    "google": ("gemini-2.5-flash", "google_base_url"),
    "openrouter": ("openai/gpt-5.1", "openrouter_base_url"),
}


@pytest.fixture
def fake(clean_fake_upstream: FakeUpstream) -> FakeUpstream:  # noqa: F811
    return clean_fake_upstream


def vendor_settings(fake: FakeUpstream, **values: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "default_processing_mode": "async",
        "queue_max_attempts": 3,
        "queue_retry_base_seconds": 0.05,
        "queue_retry_max_seconds": 0.1,
        "anthropic_default_model": "claude-sonnet-4-6",
    }
    for vendor, (_, attribute) in VENDORS.items():
        settings[f"{vendor}_api_key"] = "test-key"
        settings[f"{vendor}_base_url"] = getattr(fake, attribute)
    return {**settings, **values}


async def post(client: Client, body: dict[str, Any], status: int) -> dict[str, Any]:
    response = await client.post(COMPARISON, json=body)
    payload: dict[str, Any] = await response.get_json()
    assert response.status_code == status, payload
    return payload


async def ended(client: Client, queue_id: str, wanted: str) -> dict[str, Any]:
    async def done() -> bool:
        status = await (await client.get(f"/api/v1/status/{queue_id}")).get_json()
        return bool(status["status"] == wanted)

    await poll_until(done, within=20.0, what=f"{queue_id} {wanted}", interval=0.05)
    return await (await client.get(f"/api/v1/status/{queue_id}")).get_json()  # type: ignore[no-any-return]


# ---- with the real broker -------------------------------------------------------------------


async def on_cj_topic(broker: TansuBroker, request_id: str) -> bytes:
    """The record of `request_id`'s result on CJ's callback topic (other tests may publish
    there too: the session shares one broker)."""
    records = await consume(broker.bootstrap_servers, CJ_TOPIC, count=1000, timeout=8.0)
    mine = [r.value for r in records if f'"request_id":"{request_id}"'.encode() in r.value]
    assert len(mine) == 1, f"{len(mine)} results of {request_id} on {CJ_TOPIC}"
    return bytes(mine[0])


@pytest.fixture
async def kafka_app(start_app: StartApp, fake: FakeUpstream, kafka_broker: TansuBroker) -> Client:
    await create_topics(kafka_broker.bootstrap_servers, [CJ_TOPIC])
    return await start_app(
        **vendor_settings(
            fake,
            kafka_enabled=True,
            kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
            kafka_enable_idempotence=False,  # Tansu refuses the idempotent producer
            kafka_send_timeout_seconds=2.0,
            kafka_topic_prefix=f"t{uuid.uuid4().hex[:10]}",  # observability events elsewhere
            outbox_poll_interval_seconds=0.05,
        )
    )


async def test_cj_body_as_sent_today_is_queued_and_its_gpt_5_1_result_is_accepted(
    kafka_app: Client, fake: FakeUpstream, kafka_broker: TansuBroker
) -> None:
    body = cj_request()
    queued = await post(kafka_app, body, 202)  # no processing_mode: the setting's "async"
    await ended(kafka_app, queued["queue_id"], "completed")

    raw = await on_cj_topic(kafka_broker, queued["queue_id"])
    result = accepts(raw)  # what CJ's callback handler does; raises where it would drop it

    assert result.model == "gpt-5.1"
    assert result.cost_estimate > 0  # gpt-5.1 is priced
    assert result.winner in ("Essay A", "Essay B")
    assert result.request_metadata["essay_a_id"] == "e-a1"
    assert result.request_metadata["cj_batch_id"] == "cj-42"
    assert str(result.correlation_id) == body["correlation_id"]
    envelope = EventEnvelope[Any].model_validate_json(raw)
    assert TRACEPARENT.match(envelope.metadata["traceparent"])
    # The prompt went as the blocks say: system blocks as the system message, user blocks
    # (not user_prompt) as the user message.
    messages = fake.last("openai").json["messages"]
    assert messages[0]["content"].startswith("You are an impartial examiner")
    assert "Assignment:" in messages[1]["content"]
    assert messages[1]["content"].endswith(
        "Respond with the winner, a justification and your confidence."
    )


async def test_a_failed_cj_request_publishes_an_error_event_cj_accepts(
    kafka_app: Client, fake: FakeUpstream, kafka_broker: TansuBroker
) -> None:
    fake.fail("openai", "auth")
    queued = await post(kafka_app, cj_request(), 202)
    await ended(kafka_app, queued["queue_id"], "failed")

    result = accepts(await on_cj_topic(kafka_broker, queued["queue_id"]))

    assert result.error_detail is not None
    assert result.error_detail.error_code is HuleEduErrorCode.LLM_CONFIGURATION_ERROR
    assert result.error_detail.operation
    assert (result.model, result.response_time_ms, result.cost_estimate) == ("gpt-5.1", 0, 0.0)
    assert result.token_usage.total_tokens == 0  # a refused call spent nothing


# ---- every kind of result event ---------------------------------------------------------------


Recorded = tuple[Client, RecordingPublisher]


@pytest.fixture
def recorded(start_app: StartApp, fake: FakeUpstream) -> Callable[..., Awaitable[Recorded]]:
    async def start(**values: Any) -> Recorded:
        publisher = RecordingPublisher()
        client = await start_app(RecordingEventDeps(publisher), **vendor_settings(fake, **values))
        return client, publisher

    return start


async def result_of(publisher: RecordingPublisher, request_id: str) -> str:
    async with asyncio.timeout(15):
        while True:
            for envelope in publisher.of_type("comparison_result"):
                if str(envelope.data.request_id) == request_id:
                    return envelope.model_dump_json()
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("vendor", list(VENDORS))
async def test_a_success_from_every_vendor_is_accepted(
    recorded: Callable[..., Awaitable[Recorded]], vendor: str
) -> None:
    client, publisher = await recorded()
    model = VENDORS[vendor][0]
    answer = await post(
        client, {**cj_request(provider=vendor, model=model), "processing_mode": "immediate"}, 200
    )

    result = accepts(await result_of(publisher, answer["request_id"]))

    assert result.provider == vendor
    assert result.model == model
    assert result.cost_estimate == pytest.approx(answer["cost_estimate"])


async def test_an_unpriced_model_is_accepted_with_a_zero_cost_said_to_be_unknown(
    recorded: Callable[..., Awaitable[Recorded]],
) -> None:
    client, publisher = await recorded()
    body = {**cj_request(model="gpt-99-unreleased"), "processing_mode": "immediate"}
    answer = await post(client, body, 200)

    raw = await result_of(publisher, answer["request_id"])
    result = accepts(raw)

    assert answer["cost_estimate"] is None  # the HTTP answer says it is unknown
    assert result.cost_estimate == 0.0
    assert EventEnvelope[Any].model_validate_json(raw).data["cost_estimate_known"] is False
    metrics = await (await client.get("/metrics")).get_data(as_text=True)
    assert 'llm_provider_unpriced_calls_total{provider="openai"} 1.0' in metrics


@pytest.mark.parametrize(
    ("fault", "code", "theirs"),
    [
        ("auth", "PROVIDER_AUTH_ERROR", HuleEduErrorCode.LLM_CONFIGURATION_ERROR),
        ("bad_request", "PROVIDER_BAD_REQUEST", HuleEduErrorCode.LLM_PROVIDER_API_ERROR),
        ("schema_violation", "INVALID_PROVIDER_RESPONSE", HuleEduErrorCode.LLM_INVALID_RESPONSE),
    ],
)
async def test_every_failure_of_a_queued_request_is_accepted(
    recorded: Callable[..., Awaitable[Recorded]],
    fake: FakeUpstream,
    fault: Any,
    code: str,
    theirs: HuleEduErrorCode,
) -> None:
    client, publisher = await recorded()
    fake.fail("openai", fault)
    queued = await post(client, cj_request(), 202)
    await ended(client, queued["queue_id"], "failed")

    result = accepts(await result_of(publisher, queued["queue_id"]))

    assert result.error_detail is not None
    assert result.error_detail.error_code is theirs
    if fault == "schema_violation":  # answered, billed, and re-asked: the spend is reported
        assert result.token_usage.total_tokens > 0
        assert result.cost_estimate > 0


async def test_a_rate_limited_immediate_request_is_accepted_as_a_rate_limit(
    recorded: Callable[..., Awaitable[Recorded]], fake: FakeUpstream
) -> None:
    client, publisher = await recorded()
    fake.fail("openai", "rate_limit")
    error = await post(client, {**cj_request(), "processing_mode": "immediate"}, 503)
    request_id = None
    async with asyncio.timeout(15):
        while request_id is None:
            found = publisher.of_type("comparison_result")
            request_id = str(found[0].data.request_id) if found else None
            await asyncio.sleep(0.02)

    result = accepts(await result_of(publisher, request_id))

    assert error["error"]["code"] == "PROVIDER_UNAVAILABLE"
    assert result.error_detail is not None
    assert result.error_detail.error_code is HuleEduErrorCode.LLM_PROVIDER_RATE_LIMIT


async def test_a_cancelled_request_is_accepted(
    recorded: Callable[..., Awaitable[Recorded]],
) -> None:
    client, publisher = await recorded(worker_enabled=False)  # it waits: cancel it
    queued = await post(client, cj_request(), 202)
    assert (await client.delete(f"/api/v1/status/{queued['queue_id']}")).status_code == 200

    result = accepts(await result_of(publisher, queued["queue_id"]))

    assert result.error_detail is not None
    assert result.error_detail.error_code is HuleEduErrorCode.PROCESSING_ERROR
    assert result.error_detail.details == {}
    assert result.model == "gpt-5.1"


async def test_an_expired_request_is_accepted(
    recorded: Callable[..., Awaitable[Recorded]], fake: FakeUpstream
) -> None:
    # An outage opens the breaker, so the queued request waits unclaimed past its TTL.
    client, publisher = await recorded(
        circuit_breaker_failure_threshold=2, circuit_breaker_reset_timeout_seconds=60.0
    )
    fake.fail("openai", "unavailable")
    for _ in range(2):
        await post(client, {**cj_request(), "processing_mode": "immediate"}, 503)
    queued = await post(client, {**cj_request(), "ttl_seconds": 1}, 202)
    await ended(client, queued["queue_id"], "expired")

    result = accepts(await result_of(publisher, queued["queue_id"]))

    assert result.error_detail is not None
    assert result.error_detail.error_code is HuleEduErrorCode.TIMEOUT
    assert result.cost_estimate == 0.0


async def test_a_request_that_keeps_timing_out_is_accepted(
    recorded: Callable[..., Awaitable[Recorded]], fake: FakeUpstream
) -> None:
    fake.hang_seconds = 2.0  # restored by the fixture's reset
    client, publisher = await recorded(openai_timeout_seconds=0.3, queue_max_attempts=2)
    fake.fail("openai", "timeout")
    queued = await post(client, cj_request(), 202)
    await ended(client, queued["queue_id"], "failed")

    result = accepts(await result_of(publisher, queued["queue_id"]))

    assert result.error_detail is not None
    assert result.error_detail.error_code is HuleEduErrorCode.LLM_PROVIDER_TIMEOUT
