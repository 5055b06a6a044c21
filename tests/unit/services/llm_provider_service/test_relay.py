"""The result relay: announcing ended requests once, and what each delivery outcome does."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common_core.api_models import DependencyHealth
from common_core.enums import DeliveryChannel, DeliveryState, HealthStatus, QueueStatus
from services.llm_provider_service.delivery.webhook import OutcomeKind, WebhookOutcome
from services.llm_provider_service.errors import EventPublishError
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.outbox.memory import InMemoryResultOutbox
from services.llm_provider_service.outbox.unsaved import UnsavedDeliveries
from services.llm_provider_service.queue.memory import InMemoryRequestQueue
from services.llm_provider_service.relay import ResultRelay
from services.llm_provider_service.result_deliveries import ResultDeliveries, result_event_id
from services.llm_provider_service.tracing import default_tracer
from tests.factories import FakeClock, make_job, make_request, make_result
from tests.fakes import RecordingPublisher

HOOK = "https://hooks.example.org/results"


@dataclass
class FakeWebhooks:
    """A `WebhookSender` stand-in that answers from a script and records every send."""

    script: list[WebhookOutcome] = field(default_factory=list)
    sent: list[tuple[str, bytes, str]] = field(default_factory=list)

    async def send(self, url: str, body: bytes, *, event_id: str, event_type: str) -> Any:
        self.sent.append((url, body, event_id))
        return self.script.pop(0) if self.script else WebhookOutcome(OutcomeKind.DELIVERED, 200)


@dataclass
class Rig:
    relay: ResultRelay
    queue: InMemoryRequestQueue
    outbox: InMemoryResultOutbox
    publisher: RecordingPublisher
    webhooks: FakeWebhooks
    clock: FakeClock
    metrics: ServiceMetrics

    async def deliveries(self, request_id: Any) -> dict[DeliveryChannel, Any]:
        return {d.channel: d for d in await self.outbox.for_request(request_id)}


@pytest.fixture
def rig(make_settings) -> Rig:
    settings = make_settings(outbox_retry_base_seconds=1.0, outbox_retry_max_seconds=8.0)
    clock = FakeClock()
    queue = InMemoryRequestQueue(settings.queue, clock=clock)
    outbox = InMemoryResultOutbox(retention_seconds=600, clock=clock)
    publisher = RecordingPublisher()
    webhooks = FakeWebhooks()
    metrics = ServiceMetrics()

    def now() -> datetime:
        return datetime.fromtimestamp(clock(), tz=UTC)

    deliveries = ResultDeliveries(topic_prefix="huleedu", webhook_deadline_seconds=60, now=now)
    relay = ResultRelay(
        queue=queue,
        outbox=outbox,
        publisher=publisher,
        webhooks=webhooks,  # type: ignore[arg-type]
        deliveries=deliveries,
        metrics=metrics,
        settings=settings,
        rng=random.Random(7),
        now=now,
        unsaved=UnsavedDeliveries(max_deliveries=10_000),
        tracer=default_tracer(),
    )
    return Rig(relay, queue, outbox, publisher, webhooks, clock, metrics)


async def complete(rig: Rig, **request: Any) -> Any:
    job = make_job(request=make_request(**request))
    await rig.queue.enqueue(job, priority=5, ttl_seconds=600)
    [lease] = await rig.queue.claim(job.provider, limit=1, owner="w")
    await rig.queue.complete(lease, make_result(job))
    return job


async def test_an_ended_request_is_announced_and_delivered_once(rig: Rig):
    job = await complete(rig)
    assert await rig.relay.run_once() == 2  # one announcement, one send
    assert await rig.relay.run_once() == 0
    [event] = rig.publisher.of_type("comparison_result")
    assert event.event_id == result_event_id(job.request_id)
    assert rig.publisher.topics() == ["huleedu.llm_provider.comparison_result.v1"]
    assert await rig.queue.take_unannounced(limit=10, hide_seconds=1) == []


async def test_a_repeated_announcement_adds_no_second_delivery(rig: Rig):
    job = await complete(rig)
    [record] = await rig.queue.take_unannounced(limit=10, hide_seconds=0)
    for delivery in ResultDeliveries(
        topic_prefix="huleedu", webhook_deadline_seconds=60
    ).for_record(record):
        await rig.outbox.add(delivery)  # a relay that died before mark_announced
    await rig.relay.run_once()
    await rig.relay.run_once()
    assert len(rig.publisher.of_type("comparison_result")) == 1
    ended = await rig.queue.get(job.request_id)
    assert ended is not None
    assert ended.status is QueueStatus.COMPLETED


async def test_a_broker_failure_is_retried_with_backoff_until_it_takes_the_event(rig: Rig):
    job = await complete(rig)
    rig.publisher.fail_with = lambda: EventPublishError("broker down")
    await rig.relay.run_once()
    kafka = (await rig.deliveries(job.request_id))[DeliveryChannel.KAFKA]
    assert (kafka.state, kafka.last_error) == (DeliveryState.PENDING, "broker down")
    assert await rig.relay.run_once() == 0  # not due before its backoff
    rig.publisher.fail_with = None
    rig.clock.advance(1.01)  # the first backoff is the base delay exactly
    assert await rig.relay.run_once() == 1
    kafka = (await rig.deliveries(job.request_id))[DeliveryChannel.KAFKA]
    assert (kafka.state, kafka.attempts) == (DeliveryState.DELIVERED, 2)
    failed = rig.metrics.registry.get_sample_value(
        "llm_provider_events_published_total",
        {"event_type": "comparison_result", "outcome": "failed"},
    )
    assert failed == 1.0


def test_backoff_grows_to_its_ceiling_with_jitter(rig: Rig):
    draws = {attempt: [rig.relay.backoff(attempt) for _ in range(50)] for attempt in (1, 3, 9)}
    assert set(draws[1]) == {1.0}
    assert all(1.0 <= d <= 4.0 for d in draws[3])
    assert max(draws[3]) > 2.0
    assert all(1.0 <= d <= 8.0 for d in draws[9])


async def test_a_webhook_retry_honours_the_receivers_retry_after(rig: Rig):
    job = await complete(rig, callback_url=HOOK)
    rig.webhooks.script = [WebhookOutcome(OutcomeKind.RETRY, 503, "busy", retry_after=30.0)]
    await rig.relay.run_once()
    hook = (await rig.deliveries(job.request_id))[DeliveryChannel.WEBHOOK]
    assert hook.next_attempt_at >= datetime.fromtimestamp(rig.clock() + 29.9, tz=UTC)
    rig.clock.advance(29)
    assert await rig.relay.run_once() == 0
    rig.clock.advance(1.5)
    assert await rig.relay.run_once() == 1
    assert len(rig.webhooks.sent) == 2
    url, body, event_id = rig.webhooks.sent[-1]
    assert (url, event_id) == (HOOK, str(result_event_id(job.request_id)))
    assert body == rig.webhooks.sent[0][1]  # the same signed event every time


async def test_a_rejected_webhook_is_given_up_at_once(rig: Rig):
    job = await complete(rig, callback_url=HOOK)
    rig.webhooks.script = [WebhookOutcome(OutcomeKind.REJECTED, 410, "receiver answered 410")]
    await rig.relay.run_once()
    rig.clock.advance(300)  # long past any backoff, within the outbox's retention
    await rig.relay.run_once()
    hook = (await rig.deliveries(job.request_id))[DeliveryChannel.WEBHOOK]
    assert (hook.state, hook.last_error) == (DeliveryState.FAILED, "receiver answered 410")
    assert len(rig.webhooks.sent) == 1


async def test_a_webhook_is_given_up_at_its_deadline_with_the_last_error(rig: Rig):
    job = await complete(rig, callback_url=HOOK)
    rig.webhooks.script = [WebhookOutcome(OutcomeKind.RETRY, 500, "receiver answered 500")] * 50
    for _ in range(30):  # 30 passes over 90 s: the deadline is 60 s after the result
        await rig.relay.run_once()
        rig.clock.advance(3)
    hook = (await rig.deliveries(job.request_id))[DeliveryChannel.WEBHOOK]
    assert hook.state is DeliveryState.FAILED
    assert "deadline" in hook.last_error
    assert "receiver answered 500" in hook.last_error
    sent_by_deadline = len(rig.webhooks.sent)
    assert 2 <= sent_by_deadline < 30
    kafka = (await rig.deliveries(job.request_id))[DeliveryChannel.KAFKA]
    assert kafka.state is DeliveryState.DELIVERED  # the other channel is not held back


async def test_cancelled_and_expired_requests_owe_an_error_result(rig: Rig):
    cancelled = make_job()
    await rig.queue.enqueue(cancelled, priority=5, ttl_seconds=600)
    await rig.queue.cancel(cancelled.request_id)
    expired = make_job()
    await rig.queue.enqueue(expired, priority=5, ttl_seconds=1)
    rig.clock.advance(2)
    await rig.queue.reap()
    await rig.relay.run_once()
    codes = {
        e.data.request_id: e.data.error_detail.code
        for e in rig.publisher.of_type("comparison_result")
    }
    assert codes == {
        cancelled.request_id: "REQUEST_CANCELLED",
        expired.request_id: "REQUEST_EXPIRED",
    }


def test_the_result_event_id_is_stable_and_distinct_per_request():
    job, other = make_job(), make_job()
    assert result_event_id(job.request_id) == result_event_id(job.request_id)
    assert result_event_id(job.request_id) != result_event_id(other.request_id)
    deliveries = ResultDeliveries(topic_prefix="p", webhook_deadline_seconds=60)
    first = deliveries.for_outcome(job, result=make_result(job))
    second = deliveries.for_outcome(job, result=make_result(job))
    assert [d.delivery_id for d in first] == [d.delivery_id for d in second]
    assert first[0].deadline is None
    with_hook = make_job(request=make_request(callback_url=HOOK))
    hook = deliveries.for_outcome(with_hook, result=make_result(with_hook))[1]
    assert hook.deadline is not None
    assert hook.deadline - hook.created_at == timedelta(seconds=60)


async def test_a_long_retry_after_is_cut_to_the_deadline(rig: Rig):
    job = await complete(rig, callback_url=HOOK)
    rig.webhooks.script = [WebhookOutcome(OutcomeKind.RETRY, 429, "slow down", retry_after=3600)]
    await rig.relay.run_once()
    hook = (await rig.deliveries(job.request_id))[DeliveryChannel.WEBHOOK]
    assert hook.next_attempt_at <= hook.deadline
    rig.clock.advance(61)
    await rig.relay.run_once()
    hook = (await rig.deliveries(job.request_id))[DeliveryChannel.WEBHOOK]
    assert hook.state is DeliveryState.FAILED  # given up at its deadline, not an hour later


async def test_webhook_outcomes_are_counted_once_each(rig: Rig):
    await complete(rig, callback_url=HOOK)
    rig.webhooks.script = [WebhookOutcome(OutcomeKind.REJECTED, 404, "receiver answered 404")]
    await rig.relay.run_once()

    def count(outcome: str) -> float | None:
        return rig.metrics.registry.get_sample_value(
            "llm_provider_webhook_deliveries_total", {"outcome": outcome}
        )

    assert count("rejected") == 1.0
    assert count("given_up") is None


async def test_an_open_kafka_breaker_defers_results_to_its_probe_uncounted(rig: Rig):
    job = await complete(rig)
    rig.publisher.fail_with = lambda: EventPublishError(
        "breaker open", details={"reason": "circuit_open"}, retry_after=20.0
    )
    await rig.relay.run_once()
    kafka = (await rig.deliveries(job.request_id))[DeliveryChannel.KAFKA]
    assert kafka.next_attempt_at >= datetime.fromtimestamp(rig.clock() + 19.9, tz=UTC)
    failed = rig.metrics.registry.get_sample_value(
        "llm_provider_events_published_total",
        {"event_type": "comparison_result", "outcome": "failed"},
    )
    assert failed is None  # nothing was tried


async def test_sends_in_one_pass_are_bounded(make_settings):
    settings = make_settings(outbox_send_concurrency=3, outbox_batch_size=20)
    clock = FakeClock()
    queue = InMemoryRequestQueue(settings.queue, clock=clock)
    outbox = InMemoryResultOutbox(retention_seconds=600, clock=clock)
    active, peak = 0, 0

    class SlowPublisher(RecordingPublisher):
        async def publish(self, topic, envelope):
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1
            await super().publish(topic, envelope)

    publisher = SlowPublisher()
    relay = ResultRelay(
        queue=queue,
        outbox=outbox,
        publisher=publisher,
        webhooks=None,
        deliveries=ResultDeliveries(topic_prefix="huleedu", webhook_deadline_seconds=60),
        metrics=ServiceMetrics(),
        settings=settings,
        unsaved=UnsavedDeliveries(max_deliveries=10_000),
        tracer=default_tracer(),
    )
    for _ in range(12):
        job = make_job()
        await queue.enqueue(job, priority=5, ttl_seconds=600)
        [lease] = await queue.claim(job.provider, limit=1, owner="w")
        await queue.complete(lease, make_result(job))
    while await relay.run_once():
        pass
    assert len(publisher.of_type("comparison_result")) == 12
    assert peak == 3


# ---- Kafka records refused for good ---------------------------------------------------------


@dataclass
class TopicFailures:
    """A publisher that refuses events for some topics with a given error and records the
    rest."""

    failures: dict[str, Callable[[], Exception]] = field(default_factory=dict)
    published: list[tuple[str, Any]] = field(default_factory=list)

    async def publish(self, topic: str, envelope: Any) -> None:
        if topic in self.failures:
            raise self.failures[topic]()
        self.published.append((topic, envelope))

    def health(self) -> DependencyHealth:
        return DependencyHealth(status=HealthStatus.HEALTHY)

    async def readiness(self) -> DependencyHealth:
        return self.health()


def _refused(reason: str, topic: str) -> Callable[[], Exception]:
    return lambda: EventPublishError(
        f"Kafka refused the event for {topic} (X)", details={"reason": reason, "topic": topic}
    )


def _lost(rig: Rig, reason: str) -> float | None:
    return rig.metrics.registry.get_sample_value(
        "llm_provider_events_lost_total", {"event_type": "comparison_result", "reason": reason}
    )


async def test_a_kafka_record_refused_for_good_is_given_up_and_does_not_block_others(
    rig: Rig, caplog: pytest.LogCaptureFixture
):
    bad_topic = "huleedu.cj.too_big.v1"
    publisher = TopicFailures({bad_topic: _refused("rejected", bad_topic)})
    rig.relay._publisher = publisher
    refused = await complete(rig, callback_topic=bad_topic)
    fine = await complete(rig)

    with caplog.at_level("ERROR", logger="services.llm_provider_service.relay"):
        await rig.relay.run_once()

    kafka = (await rig.deliveries(refused.request_id))[DeliveryChannel.KAFKA]
    assert kafka.state is DeliveryState.FAILED
    assert kafka.attempts == 1
    assert kafka.last_error is not None
    assert bad_topic in kafka.last_error
    assert (await rig.deliveries(fine.request_id))[DeliveryChannel.KAFKA].state is (
        DeliveryState.DELIVERED
    )
    assert [topic for topic, _ in publisher.published] == [
        "huleedu.llm_provider.comparison_result.v1"
    ]
    assert _lost(rig, "rejected") == 1.0
    [line] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert bad_topic in line.getMessage()
    assert str(refused.request_id) in line.getMessage()
    assert await rig.relay.run_once() == 0  # nothing left pending
    assert (await rig.outbox.stats()).pending.get(DeliveryChannel.KAFKA, 0) == 0


async def test_an_unknown_topic_is_retried_a_bounded_number_of_times_then_given_up(
    make_settings,
):
    settings = make_settings(
        outbox_retry_base_seconds=1.0,
        outbox_retry_max_seconds=1.0,
        kafka_unknown_topic_max_attempts=3,
    )
    clock = FakeClock()
    queue = InMemoryRequestQueue(settings.queue, clock=clock)
    outbox = InMemoryResultOutbox(retention_seconds=600, clock=clock)
    metrics = ServiceMetrics()
    topic = "huleedu.cj.missing.v1"
    publisher = TopicFailures({topic: _refused("unknown_topic", topic)})

    def now() -> datetime:
        return datetime.fromtimestamp(clock(), tz=UTC)

    relay = ResultRelay(
        queue=queue,
        outbox=outbox,
        publisher=publisher,
        webhooks=None,
        deliveries=ResultDeliveries(topic_prefix="huleedu", webhook_deadline_seconds=60, now=now),
        metrics=metrics,
        settings=settings,
        rng=random.Random(7),
        now=now,
        unsaved=UnsavedDeliveries(max_deliveries=10_000),
        tracer=default_tracer(),
    )
    rig = Rig(relay, queue, outbox, RecordingPublisher(), FakeWebhooks(), clock, metrics)
    job = await complete(rig, callback_topic=topic)

    states = []
    for _ in range(4):
        await relay.run_once()
        kafka = (await rig.deliveries(job.request_id))[DeliveryChannel.KAFKA]
        states.append((kafka.state, kafka.attempts))
        clock.advance(1.01)

    assert states == [
        (DeliveryState.PENDING, 1),
        (DeliveryState.PENDING, 2),
        (DeliveryState.FAILED, 3),
        (DeliveryState.FAILED, 3),
    ]
    assert _lost(rig, "unknown_topic") == 1.0
