"""The result relay: hands ended requests' results to the outbox and delivers the outbox.

Two steps per pass, both safe to run on every replica at once (after writing to the outbox
any request-path deliveries this process holds because the outbox was unreachable when they
were owed, `outbox/unsaved.py`):
1. announce: every queued request that ended (the queue marked it in the same atomic step
   as its terminal status) gets its result deliveries added to the outbox, then is marked
   announced. A relay that dies in between leaves it to be announced again; the outbox
   ignores the repeat because delivery ids are derived from the request.
2. deliver: claim due deliveries (leased, so two relays never send one at the same time),
   send each, and record the outcome: acknowledged deliveries leave the outbox; the rest
   are retried with jittered exponential backoff, Kafka results until the broker takes them
   (or refuses them for good: too large, not authorised, or a topic it still does not know
   after KAFKA_UNKNOWN_TOPIC_MAX_ATTEMPTS) and webhooks until their deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

from common_core.enums import DeliveryChannel
from common_core.events import ComparisonResultData, EventEnvelope, LLMProviderEvent
from services.llm_provider_service.delivery.webhook import OutcomeKind, WebhookSender
from services.llm_provider_service.errors import EventPublishError, QueueUnavailableError
from services.llm_provider_service.events import reasons
from services.llm_provider_service.logging_setup import bind_log_context
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.models import Delivery, QueueRecord
from services.llm_provider_service.outbox.unsaved import UnsavedDeliveries
from services.llm_provider_service.protocols import EventPublisher, RequestQueue, ResultOutbox
from services.llm_provider_service.result_deliveries import ResultDeliveries
from services.llm_provider_service.settings import Settings
from services.llm_provider_service.tracing import extract

logger = logging.getLogger(__name__)
T = TypeVar("T")

_RESULT = LLMProviderEvent.COMPARISON_RESULT.value
_W3C = ("traceparent", "tracestate")


class ResultRelay:
    """Moves results from the queue to the outbox and from the outbox to their consumers."""

    def __init__(
        self,
        *,
        queue: RequestQueue,
        outbox: ResultOutbox,
        publisher: EventPublisher,
        webhooks: WebhookSender | None,
        deliveries: ResultDeliveries,
        metrics: ServiceMetrics,
        settings: Settings,
        unsaved: UnsavedDeliveries,
        tracer: Tracer,
        rng: random.Random | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._tracer = tracer
        self._unsaved = unsaved
        self._queue = queue
        self._outbox = outbox
        self._publisher = publisher
        self._webhooks = webhooks
        self._deliveries = deliveries
        self._metrics = metrics
        self._settings = settings
        self._rng = rng or random.Random()
        self._now = now
        self.healthy = True

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set."""
        interval = self._settings.outbox.poll_interval_seconds
        while not stop.is_set():
            try:
                busy = await self.run_once()
            except Exception:  # a bug must not stop every later delivery
                logger.exception("result relay pass failed; retrying")
                busy = 0
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=interval)
        await self._last_flush()

    async def _last_flush(self) -> None:
        """On stopping: one more try to write held deliveries; what stays is lost."""
        if not self._unsaved:
            return
        try:
            await self._unsaved.flush(self._outbox)
        except QueueUnavailableError as exc:
            lost = len(self._unsaved)
            self._metrics.events_published.labels(_RESULT, "lost").inc(lost)
            logger.error("%d result deliveries held for the outbox lost at shutdown: %s", lost, exc)
        finally:
            self._metrics.outbox_unsaved.set(len(self._unsaved))

    async def run_once(self) -> int:
        """One pass; returns how many announcements and sends it made (0: nothing to do)."""
        try:
            done = await self.flush_unsaved()
            done += await self.announce() + await self.deliver()
            self._metrics.observe_outbox(await self._outbox.stats())
        except QueueUnavailableError as exc:
            if self.healthy:
                logger.warning("result relay cannot reach its store, retrying: %s", exc)
            self.healthy = False
            return 0
        self.healthy = True
        return done

    async def flush_unsaved(self) -> int:
        """Write the deliveries this process holds for the outbox; how many went in."""
        try:
            return await self._unsaved.flush(self._outbox)
        finally:
            self._metrics.outbox_unsaved.set(len(self._unsaved))

    async def announce(self) -> int:
        records = await self._queue.take_unannounced(
            limit=self._settings.outbox.batch_size,
            hide_seconds=self._settings.outbox.lease_seconds,
        )

        async def announce_one(record: QueueRecord) -> None:
            for delivery in self._deliveries.for_record(record):
                await self._outbox.add(delivery)
            await self._queue.mark_announced(record.queue_id)  # only once all are in

        await self._bounded(announce_one, records)
        return len(records)

    async def deliver(self) -> int:
        claimed = await self._outbox.claim(
            limit=self._settings.outbox.batch_size,
            lease_seconds=self._settings.outbox.lease_seconds,
        )
        await self._bounded(self._send, claimed)
        return len(claimed)

    async def _bounded(self, step: Callable[[T], Awaitable[None]], items: Sequence[T]) -> None:
        """`step` over `items`, OUTBOX_SEND_CONCURRENCY at a time: each step writes to the
        outbox, and a whole batch at once would take most of the shared Redis pool."""
        gate = asyncio.Semaphore(self._settings.outbox.send_concurrency)

        async def bounded(item: T) -> None:
            async with gate:
                await step(item)

        await asyncio.gather(*(bounded(item) for item in items))

    async def _send(self, delivery: Delivery) -> None:
        # Each delivery is sent in its own task (`_bounded`): its lines name it.
        bind_log_context(
            delivery_id=delivery.delivery_id,
            request_id=delivery.request_id,
            correlation_id=delivery.key,
            channel=delivery.channel.value,
        )
        # One span per attempt, a child of the context the event names (the span that queued
        # or served the request): its `traceparent` goes on the Kafka record or the POST.
        attributes: dict[str, AttributeValue] = {
            "llm_provider.request_id": str(delivery.request_id),
            "llm_provider.delivery.channel": delivery.channel.value,
            "llm_provider.delivery.attempt": delivery.attempts + 1,
        }
        if delivery.channel is DeliveryChannel.KAFKA:
            attributes["messaging.destination.name"] = delivery.destination
        try:
            with self._tracer.start_as_current_span(
                f"result.deliver {delivery.channel.value}",
                context=extract(_event_trace_context(delivery.payload)),
                kind=SpanKind.PRODUCER,
                attributes=attributes,
            ):
                if delivery.channel is DeliveryChannel.KAFKA:
                    await self._send_kafka(delivery)
                else:
                    await self._send_webhook(delivery)
        except QueueUnavailableError as exc:
            # The outcome could not be recorded: the lease runs out and it is sent again.
            logger.warning("outcome of delivery %s not recorded: %s", delivery.delivery_id, exc)

    async def _send_kafka(self, delivery: Delivery) -> None:
        envelope = EventEnvelope[ComparisonResultData].model_validate_json(delivery.payload)
        try:
            await self._publisher.publish(delivery.destination, envelope)
        except EventPublishError as exc:
            # While the breaker is open nothing was tried: wait for its probe, and do not
            # count an attempt that was never made.
            reason = exc.details.get("reason")
            if reason != reasons.CIRCUIT_OPEN:
                self._metrics.events_published.labels(_RESULT, "failed").inc()
            if reason in reasons.PERMANENT or (
                reason == reasons.UNKNOWN_TOPIC
                and delivery.attempts >= self._settings.kafka.unknown_topic_max_attempts
            ):
                await self._give_up_kafka(delivery, str(reason), str(exc))
                return
            delay = max(self.backoff(delivery.attempts), exc.retry_after or 0.0)
            await self._outbox.retry(delivery.delivery_id, delay_seconds=delay, error=str(exc))
            return
        self._metrics.events_published.labels(_RESULT, "published").inc()
        await self._outbox.delivered(delivery.delivery_id)

    async def _send_webhook(self, delivery: Delivery) -> None:
        if self._webhooks is None:  # callback_url is refused at submission without a sender
            self._metrics.webhook_deliveries.labels("given_up").inc()
            await self._give_up(delivery, "webhooks are not configured on this service")
            return
        if delivery.deadline is not None and self._now() >= delivery.deadline:
            self._metrics.webhook_deliveries.labels("given_up").inc()
            await self._give_up(delivery, f"deadline passed; last error: {delivery.last_error}")
            return
        outcome = await self._webhooks.send(
            delivery.destination,
            delivery.payload.encode(),
            event_id=str(delivery.event_id),
            event_type=delivery.event_type,
        )
        self._metrics.webhook_deliveries.labels(outcome.kind.value).inc()
        if outcome.kind is OutcomeKind.DELIVERED:
            await self._outbox.delivered(delivery.delivery_id)
        elif outcome.kind is OutcomeKind.REJECTED:
            await self._give_up(delivery, outcome.error or f"HTTP {outcome.status_code}")
        else:
            delay = max(self.backoff(delivery.attempts), outcome.retry_after or 0.0)
            if delivery.deadline is not None:  # a long Retry-After must not outlast it
                left = (delivery.deadline - self._now()).total_seconds()
                delay = max(0.0, min(delay, left))
            error = outcome.error or f"HTTP {outcome.status_code}"
            await self._outbox.retry(delivery.delivery_id, delay_seconds=delay, error=error)

    async def _give_up_kafka(self, delivery: Delivery, reason: str, error: str) -> None:
        """The broker refused the record for good: the result event is lost to Kafka (the
        status body still has the result, and a webhook its own delivery)."""
        logger.error(
            "result event of request %s lost: Kafka refused it for topic %s for good "
            "after %d attempt(s) (%s): %s",
            delivery.request_id,
            delivery.destination,
            delivery.attempts,
            reason,
            error,
        )
        self._metrics.events_lost.labels(_RESULT, reason).inc()
        await self._outbox.give_up(delivery.delivery_id, error=error)

    async def _give_up(self, delivery: Delivery, error: str) -> None:
        logger.warning("webhook %s given up: %s", delivery.delivery_id, error)
        await self._outbox.give_up(delivery.delivery_id, error=error)

    def backoff(self, attempts: int) -> float:
        """Exponential backoff with full jitter between the base and the attempt's ceiling."""
        base = self._settings.outbox.retry_base_seconds
        ceiling = min(self._settings.outbox.retry_max_seconds, base * 2 ** max(0, attempts - 1))
        return self._rng.uniform(base, max(base, ceiling))


def _event_trace_context(payload: str) -> dict[str, str]:
    """The W3C context in a stored envelope's `metadata` (`traceparent`, `tracestate`);
    empty for a payload without one."""
    try:
        metadata = json.loads(payload).get("metadata")
    except (ValueError, AttributeError):
        return {}
    if not isinstance(metadata, dict):
        return {}
    return {k: v for k, v in metadata.items() if k in _W3C and isinstance(v, str)}
