"""One trace per request, end to end: the app's spans caught by the SDK's in-memory exporter.

The app runs with a private redis-server (the durable queue), the session's Tansu broker
(Kafka result events) and a real webhook receiver; only the span exporter is replaced, by
a container override, as a test would replace any other binding.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from dishka import Provider, Scope, provide
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, TracerProvider
from quart.typing import TestClientProtocol as Client

from common_core.events import LLMProviderEvent, topic_name
from tests.integration.conftest import StartApp
from tests.support.kafka_broker import TansuBroker, consume, create_topics
from tests.support.processes import poll_until
from tests.support.redis_server import RedisServer
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.timeout(90)

SECRET = "test-webhook-secret-0123456789"
BODY: dict[str, Any] = {
    "user_prompt": "Which essay is better argued?",
    "essay_a": "A careful argument.",
    "essay_b": "A loud assertion.",
}


def traceparent() -> tuple[str, str, str]:
    """A caller's fresh `traceparent`, its trace id and its span id."""
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


class InMemoryTraces(Provider):
    """The tracer provider, exporting every ended span at once to `exporter`."""

    scope = Scope.APP

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        super().__init__()
        self._exporter = exporter

    @provide
    def tracer_provider(self) -> Iterator[TracerProvider]:
        provider = SdkTracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self._exporter))
        yield provider
        provider.shutdown()


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def hex_trace(span: ReadableSpan) -> str:
    return format(span.context.trace_id, "032x")


def hex_span(span: ReadableSpan) -> str:
    return format(span.context.span_id, "016x")


def in_trace(exporter: InMemorySpanExporter, trace_id: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if hex_trace(s) == trace_id]


def only(spans: Sequence[ReadableSpan], name: str, **attributes: Any) -> ReadableSpan:
    found = [
        s
        for s in spans
        if s.name == name and all((s.attributes or {}).get(k) == v for k, v in attributes.items())
    ]
    assert len(found) == 1, (name, attributes, [(s.name, s.attributes) for s in spans])
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


@pytest.fixture
async def queued_app(
    start_app: StartApp,
    exporter: InMemorySpanExporter,
    kafka_broker: TansuBroker,
    redis_server: RedisServer,
) -> tuple[Client, str]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    await create_topics(
        kafka_broker.bootstrap_servers, [topic_name(e, prefix) for e in LLMProviderEvent]
    )
    client = await start_app(
        InMemoryTraces(exporter),
        kafka_enabled=True,
        kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
        kafka_enable_idempotence=False,  # Tansu refuses the idempotent producer
        kafka_send_timeout_seconds=2.0,
        kafka_topic_prefix=prefix,
        callback_topic_allowlist=(f"{prefix}.*",),
        enable_queue_persistence=True,
        redis_url=redis_server.url,
        queue_key_prefix=prefix,
        outbox_poll_interval_seconds=0.05,
        webhook_allowed_hosts=("127.0.0.1",),
        webhook_allow_private_addresses=True,
        webhook_allow_http=True,
        webhook_signing_secret=SECRET,
    )
    return client, prefix


async def test_a_queued_request_is_one_trace_from_the_route_to_every_delivery(
    queued_app: tuple[Client, str],
    exporter: InMemorySpanExporter,
    kafka_broker: TansuBroker,
):
    client, prefix = queued_app
    header, trace_id, caller_span = traceparent()
    async with WebhookReceiver() as receiver:
        # The provider is down: the call fails and the request is queued.
        await client.post("/api/v1/dev/mock-fault", json={"error_rate": 1.0})
        response = await client.post(
            "/api/v1/comparison",
            json={**BODY, "callback_url": receiver.url("/results")},
            headers={"traceparent": header},
        )
        queued = await response.get_json()
        assert response.status_code == 202, queued
        queue_id = queued["queue_id"]
        # The provider is back: the worker answers it, the relay delivers it.
        await client.post("/api/v1/dev/mock-fault", json={"error_rate": 0.0})
        [webhook] = await receiver.wait_for(1, timeout=30, successful=True)

        async def delivered() -> bool:
            status = await (await client.get(f"/api/v1/status/{queue_id}")).get_json()
            deliveries = status["deliveries"]
            return len(deliveries) == 2 and all(d["state"] == "delivered" for d in deliveries)

        await poll_until(delivered, within=30, what="both deliveries", interval=0.05)
    status = await (await client.get(f"/api/v1/status/{queue_id}")).get_json()
    result_topic = topic_name(LLMProviderEvent.COMPARISON_RESULT, prefix)
    [record] = await consume(kafka_broker.bootstrap_servers, result_topic, count=1, timeout=15)

    spans = in_trace(exporter, trace_id)
    route = only(spans, "POST /api/v1/comparison")
    first_call = only(spans, "provider.call", **{"llm_provider.from_queue": False})
    enqueue = only(spans, "queue.enqueue")
    run = only(spans, "queue.run")
    queued_call = only(spans, "provider.call", **{"llm_provider.from_queue": True})
    to_kafka = only(spans, "result.deliver kafka")
    to_webhook = only(spans, "result.deliver webhook")

    # The route continues the caller's span; everything else descends from the route.
    assert route.kind is SpanKind.SERVER
    assert parent_of(route) == int(caller_span, 16)
    assert route.attributes is not None
    assert route.attributes["http.response.status_code"] == 202
    assert parent_of(first_call) == route.context.span_id
    assert not first_call.status.is_ok  # the provider was down
    assert parent_of(enqueue) == route.context.span_id
    assert enqueue.attributes is not None
    assert enqueue.attributes["llm_provider.queue_reason"] == "PROVIDER_UNAVAILABLE"
    # The worker continues the context stored in the queue record.
    assert parent_of(run) == enqueue.context.span_id
    assert run.attributes is not None
    assert run.attributes["llm_provider.queue_id"] == queue_id
    assert parent_of(queued_call) == run.context.span_id
    assert queued_call.status.is_ok
    # Each delivery continues the context the result event names.
    assert parent_of(to_kafka) == enqueue.context.span_id
    assert parent_of(to_webhook) == enqueue.context.span_id
    assert run.start_time is not None
    assert enqueue.end_time is not None
    assert run.start_time >= enqueue.end_time

    # The deliveries carry their own span's context to the consumer.
    headers = {name: value.decode() for name, value in record.headers}
    assert headers["traceparent"] == f"00-{trace_id}-{hex_span(to_kafka)}-01"
    assert webhook.header("traceparent") == f"00-{trace_id}-{hex_span(to_webhook)}-01"
    # The trace id in the result is the trace's.
    assert status["result"]["trace_id"] == trace_id


async def test_a_callers_traceparent_is_continued_and_names_the_result(
    start_app: StartApp, exporter: InMemorySpanExporter
):
    client = await start_app(InMemoryTraces(exporter))
    header, trace_id, caller_span = traceparent()
    response = await client.post(
        "/api/v1/comparison",
        json={**BODY, "processing_mode": "immediate"},
        headers={"traceparent": header, "tracestate": "vendor=abc"},
    )
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["trace_id"] == trace_id

    spans = in_trace(exporter, trace_id)
    route = only(spans, "POST /api/v1/comparison")
    call = only(spans, "provider.call")
    assert parent_of(route) == int(caller_span, 16)
    assert route.parent is not None
    assert route.parent.is_remote
    assert route.context.trace_state.get("vendor") == "abc"
    assert parent_of(call) == route.context.span_id


async def test_without_a_traceparent_the_result_names_the_new_trace(
    start_app: StartApp, exporter: InMemorySpanExporter
):
    client = await start_app(InMemoryTraces(exporter))
    response = await client.post(
        "/api/v1/comparison", json={**BODY, "processing_mode": "immediate"}
    )
    body = await response.get_json()
    assert response.status_code == 200, body
    route = only(exporter.get_finished_spans(), "POST /api/v1/comparison")
    assert route.parent is None
    assert body["trace_id"] == hex_trace(route)
