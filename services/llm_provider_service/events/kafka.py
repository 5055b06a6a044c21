"""The Kafka event publisher: aiokafka behind its own circuit breakers, started lazily.

Delivery is at least once: an event whose acknowledgement timed out may still reach the
broker later, so a caller that retries can publish it twice (consumers drop duplicates by
`event_id`). After any outage-like failure the producer is discarded and the next attempt
builds a new one, so a restarted broker (same address) is picked up without stale
connections or metadata.

Refusals are told apart from outages (`events/reasons.py`): a record or topic the broker
refuses for good is `rejected`, and a topic that stays missing from the broker's metadata
answers for half the send timeout is `unknown_topic`. Neither counts toward the breaker.

Each topic has its own breaker (`events/kafka_breakers.py`); the publisher's `state`, its
`health()` and the transitions it reports are those of the worst topic.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import (
    KafkaError,
    ProducerClosed,
    UnknownTopicOrPartitionError,
)

from common_core.api_models import DependencyHealth
from common_core.enums import CircuitBreakerState, HealthStatus
from common_core.events import EventEnvelope
from services.llm_provider_service.breaker import CircuitBreaker, TransitionListener
from services.llm_provider_service.errors import EventPublishError
from services.llm_provider_service.events.kafka_breakers import TopicBreakers
from services.llm_provider_service.events.kafka_refusals import REFUSALS, check_topic
from services.llm_provider_service.events.reasons import (
    CIRCUIT_OPEN,
    NOT_OUTAGES,
    REJECTED,
    UNKNOWN_TOPIC,
)
from services.llm_provider_service.settings import KafkaSettings
from services.llm_provider_service.tracing import carrier

logger = logging.getLogger(__name__)


class KafkaEventPublisher:
    """`EventPublisher` to Kafka. `publish` raises `EventPublishError` unless the broker
    acknowledged the event (acks=all) within `send_timeout_seconds`; while the topic's
    breaker is open it raises at once without touching the network.

    `on_transition` hears ("kafka", old, new) whenever the worst state over the topics'
    breakers changes."""

    def __init__(
        self, config: KafkaSettings, *, on_transition: TransitionListener | None = None
    ) -> None:
        self._config = config
        self._breakers = TopicBreakers(
            failure_threshold=config.breaker_failure_threshold,
            reset_timeout_seconds=config.breaker_reset_timeout_seconds,
            on_transition=on_transition,
        )
        self._producer: AIOKafkaProducer | None = None
        self._start_lock = asyncio.Lock()
        self._stopping: set[asyncio.Task[None]] = set()
        self._failing = False
        self._closed = False

    def breaker_for(self, topic: str) -> CircuitBreaker:
        """The breaker of `topic`, made on first use (the shared one past the bound)."""
        return self._breakers.breaker_for(topic)

    @property
    def breaker(self) -> CircuitBreaker:
        """The breaker of the topic in the worst state (among equals, the one that failed
        last), for health details; before any publish, the shared one of other topics."""
        return self._breakers.worst

    @property
    def state(self) -> CircuitBreakerState:
        """The worst state over the topics' breakers; CLOSED before any publish."""
        return self._breakers.state

    def retry_after_seconds(self) -> float:
        """Seconds until the last open topic breaker lets a probe through; 0.0 if none."""
        return self._breakers.retry_after_seconds()

    def health(self) -> DependencyHealth:
        """Healthy while every topic's breaker is closed; degraded (events wait or are
        dropped, the service still answers) while one is open or probing."""
        troubled = self._breakers.not_closed()
        if not troubled:
            detail = f"kafka at {self._config.bootstrap_servers}"
            return DependencyHealth(status=HealthStatus.HEALTHY, detail=detail)
        shown = "; ".join(f"{name} {b.state.value}: {b.last_error}" for name, b in troubled[:3])
        more = f"; and {len(troubled) - 3} more" if len(troubled) > 3 else ""
        detail = f"kafka circuit breaker not closed for topic {shown}{more}"
        return DependencyHealth(status=HealthStatus.DEGRADED, detail=detail)

    async def readiness(self) -> DependencyHealth:
        """Unhealthy while closed or while the brokers do not answer one metadata round trip
        on a throwaway client (the producer is started lazily, so an idle publisher would not
        notice a broker that went away), bounded by the send timeout. The topic breakers do
        not count: one caller's bad `callback_topic` would otherwise take every replica out of
        the load balancer, and a breaker left half-open with nothing to publish keep it out."""
        if self._closed:
            return DependencyHealth(status=HealthStatus.UNHEALTHY, detail="publisher closed")
        timeout = self._config.send_timeout_seconds
        client = AIOKafkaClient(
            bootstrap_servers=self._config.bootstrap_servers,
            client_id=self._config.client_id,
            request_timeout_ms=int(timeout * 1000),
        )
        try:
            async with asyncio.timeout(timeout):
                await client.bootstrap()
        except (KafkaError, OSError, TimeoutError) as exc:
            detail = f"kafka at {self._config.bootstrap_servers} unreachable: {exc!r}"
            return DependencyHealth(status=HealthStatus.UNHEALTHY, detail=detail)
        finally:
            await client.close()
        detail = f"kafka at {self._config.bootstrap_servers} answers"
        return DependencyHealth(status=HealthStatus.HEALTHY, detail=detail)

    async def publish(self, topic: str, envelope: EventEnvelope[Any]) -> None:
        """Publish one event keyed by its correlation id, with `event_type` and `event_id`
        headers, and the current span's W3C `traceparent` (and `tracestate`) when there is
        one; returns once the broker acknowledged it."""
        if self._closed:
            raise EventPublishError(
                "event not published: the publisher is closed", details={"reason": "closed"}
            )
        try:
            value = envelope.model_dump_json().encode()
        except ValueError as exc:  # pydantic's serialization errors are ValueErrors
            raise EventPublishError(
                f"event {envelope.event_id} cannot be serialized: {exc}",
                details={"reason": REJECTED, "topic": topic},
            ) from exc
        key = str(envelope.correlation_id).encode()
        headers = [
            ("event_type", envelope.event_type.encode()),
            ("event_id", str(envelope.event_id).encode()),
            *((name, value.encode()) for name, value in carrier().items()),
        ]
        breaker = self.breaker_for(topic)
        try:
            await breaker.call(self._send, topic, value, key, headers)
        except EventPublishError as exc:
            self._note_failure(topic, exc)
            raise
        self._note_success()
        self._breakers.forget_idle(keep=breaker)

    async def close(self) -> None:
        """Flush and stop the producer, within the close timeout; safe if never started."""
        self._closed = True
        async with self._start_lock:
            if self._producer is not None:
                self._discard(self._producer)
        if not self._stopping:
            return
        _, pending = await asyncio.wait(
            set(self._stopping), timeout=self._config.close_timeout_seconds + 1.0
        )
        for task in pending:  # only if stop() overran its own bound; should not happen
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def _send(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        """One attempt, start included, bounded by the send timeout; errors become
        `EventPublishError` with a `reason` in `details`."""
        timeout = self._config.send_timeout_seconds
        producer: AIOKafkaProducer | None = None
        try:
            async with asyncio.timeout(timeout):
                for _ in range(2):
                    producer = await self._started_producer()
                    try:
                        await check_topic(producer, topic, timeout / 2)
                        await producer.send_and_wait(topic, value, key=key, headers=headers)
                        return
                    except ProducerClosed:
                        # Replaced by a concurrent failure (or closed): try the current one.
                        if self._closed:
                            raise
                raise ProducerClosed()
        except UnknownTopicOrPartitionError as exc:
            raise EventPublishError(
                f"Kafka does not know the topic {topic}",
                details={"reason": UNKNOWN_TOPIC, "topic": topic},
            ) from exc
        except REFUSALS as exc:
            raise EventPublishError(
                f"Kafka refused the event for {topic} ({type(exc).__name__})",
                details={"reason": REJECTED, "topic": topic},
            ) from exc
        except TimeoutError as exc:
            self._discard(producer)
            raise EventPublishError(
                f"Kafka did not acknowledge the event for {topic} within {timeout}s",
                details={"reason": "timeout", "topic": topic},
            ) from exc
        except (KafkaError, OSError) as exc:
            self._discard(producer)
            # The broker's address stays out of the message (status bodies show it); the
            # log shows the cause.
            raise EventPublishError(
                f"Kafka is unavailable for {topic} ({type(exc).__name__})",
                details={"reason": "unavailable", "topic": topic},
            ) from exc

    async def _started_producer(self) -> AIOKafkaProducer:
        """The current producer, created and started on first use; a failed start is
        cleaned up and raised."""
        async with self._start_lock:
            if self._closed:
                raise ProducerClosed()
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(
                bootstrap_servers=self._config.bootstrap_servers,
                client_id=self._config.client_id,
                acks="all",
                enable_idempotence=self._config.enable_idempotence,
                request_timeout_ms=max(1, int(self._config.send_timeout_seconds * 1000)),
            )
            try:
                await producer.start()
            except BaseException:
                # Nothing was sent yet, so stopping only closes the connections.
                await asyncio.shield(producer.stop())
                raise
            self._producer = producer
            return producer

    def _discard(self, producer: AIOKafkaProducer | None) -> None:
        """If `producer` is current, forget it and stop it in the background (bounded), so
        the failing call does not also wait for the flush. The next attempt starts afresh."""
        if producer is None or self._producer is not producer:
            return  # never started, or already replaced by a concurrent failure
        self._producer = None
        task = asyncio.create_task(self._stop(producer))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _stop(self, producer: AIOKafkaProducer) -> None:
        try:
            async with asyncio.timeout(self._config.close_timeout_seconds):
                await producer.stop()
        except TimeoutError:
            logger.warning("Kafka producer did not stop within its timeout")
        except Exception:
            logger.debug("Kafka producer failed while stopping", exc_info=True)

    def _note_failure(self, topic: str, exc: EventPublishError) -> None:
        """Warn when publishing starts failing, not for every event that fails after."""
        reason = exc.details.get("reason")
        if reason == CIRCUIT_OPEN:
            return  # the breaker's own transition was logged
        if reason in NOT_OUTAGES:
            logger.warning("event to %s not published: %s (%r)", topic, exc.message, exc.__cause__)
        elif not self._failing:
            self._failing = True
            logger.warning("Kafka publishing is failing: %s (%r)", exc.message, exc.__cause__)
        else:
            logger.debug("Kafka publishing still failing: %s", exc.message)

    def _note_success(self) -> None:
        if self._failing:
            self._failing = False
            logger.info("Kafka publishing recovered")
