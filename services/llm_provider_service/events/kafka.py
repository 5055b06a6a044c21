"""The Kafka event publisher: aiokafka behind its own circuit breaker, started lazily.

Delivery is at least once: an event whose acknowledgement timed out may still reach the
broker later, so a caller that retries can publish it twice (consumers drop duplicates by
`event_id`). After any outage-like failure the producer is discarded and the next attempt
builds a new one, so a restarted broker (same address) is picked up without stale
connections or metadata.

Refusals are told apart from outages (`events/reasons.py`): a record or topic the broker
refuses for good is `rejected`, and a topic that stays missing from the broker's metadata
answers for half the send timeout is `unknown_topic`. Neither counts toward the breaker.

Each topic has its own breaker (`kafka:<topic>`), so a topic whose sends time out (its
leader gone, say) stops only its own events. The set is bounded: past
`MAX_TOPIC_BREAKERS` topics, the rest share one (`kafka:*`). The publisher's `state`, its
`health()` and the transitions it reports are those of the worst topic.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    PolicyViolationError,
    ProducerClosed,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)

from common_core.api_models import DependencyHealth
from common_core.enums import CircuitBreakerState, HealthStatus
from common_core.events import EventEnvelope
from services.llm_provider_service.breaker import CircuitBreaker, TransitionListener
from services.llm_provider_service.errors import EventPublishError
from services.llm_provider_service.events.reasons import CIRCUIT_OPEN, REJECTED, UNKNOWN_TOPIC
from services.llm_provider_service.settings import Settings
from services.llm_provider_service.tracing import carrier

logger = logging.getLogger(__name__)

BREAKER_NAME = "kafka"
MAX_TOPIC_BREAKERS = 64
"""Topics with a breaker of their own; topics come from settings and the callback-topic
allow-list, so this is only a bound against a pattern that admits unbounded names."""
_OTHER_TOPICS = "*"  # not a valid topic name, so it names no real topic
_SEVERITY = {
    CircuitBreakerState.CLOSED: 0,
    CircuitBreakerState.HALF_OPEN: 1,
    CircuitBreakerState.OPEN: 2,
}

# The broker (or the client, before sending) refused this record or topic: the broker is up,
# so these neither count toward the breaker nor cost the producer.
_REJECTED: tuple[type[Exception], ...] = (
    CorruptRecordException,
    InvalidTopicError,
    MessageSizeTooLargeError,
    PolicyViolationError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)
_REASON_REJECTED = REJECTED
_NOT_OUTAGES = frozenset({REJECTED, UNKNOWN_TOPIC})
_METADATA_RETRY_SECONDS = 0.1


@dataclass(frozen=True)
class KafkaPublisherConfig:
    """What the publisher needs from `Settings`; tests build it directly."""

    bootstrap_servers: str
    client_id: str = "llm_provider_service"
    enable_idempotence: bool = True
    send_timeout_seconds: float = 5.0
    breaker_failure_threshold: int = 3
    breaker_reset_timeout_seconds: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaPublisherConfig:
        return cls(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=settings.kafka_client_id,
            enable_idempotence=settings.kafka_enable_idempotence,
            send_timeout_seconds=settings.kafka_send_timeout_seconds,
            breaker_failure_threshold=settings.kafka_breaker_failure_threshold,
            breaker_reset_timeout_seconds=settings.kafka_breaker_reset_timeout_seconds,
        )

    @property
    def close_timeout_seconds(self) -> float:
        """Bound for stopping a producer: its unsent batches expire after the send timeout."""
        return self.send_timeout_seconds + 1.0


def _counts_as_outage(exc: Exception) -> bool:
    return isinstance(exc, EventPublishError) and exc.details.get("reason") not in _NOT_OUTAGES


def _open_error(retry_after: float) -> Exception:
    return EventPublishError(
        "event not published: the Kafka circuit breaker is open",
        details={"reason": CIRCUIT_OPEN},
        retry_after=retry_after,
    )


class KafkaEventPublisher:
    """`EventPublisher` to Kafka. `publish` raises `EventPublishError` unless the broker
    acknowledged the event (acks=all) within `send_timeout_seconds`; while the topic's
    breaker is open it raises at once without touching the network.

    `on_transition` hears ("kafka", old, new) whenever the worst state over the topics'
    breakers changes."""

    def __init__(
        self, config: KafkaPublisherConfig, *, on_transition: TransitionListener | None = None
    ) -> None:
        self._config = config
        self._on_transition = on_transition
        self._breakers: dict[str, CircuitBreaker] = {}
        self._transitioned: dict[str, CircuitBreakerState] = {}
        self._reported = CircuitBreakerState.CLOSED
        self._producer: AIOKafkaProducer | None = None
        self._start_lock = asyncio.Lock()
        self._stopping: set[asyncio.Task[None]] = set()
        self._failing = False
        self._closed = False

    def breaker_for(self, topic: str) -> CircuitBreaker:
        """The breaker of `topic`, made on first use (the shared one past the bound)."""
        key = topic
        if key not in self._breakers and len(self._breakers) >= MAX_TOPIC_BREAKERS:
            key = _OTHER_TOPICS
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(
                f"{BREAKER_NAME}:{key}",
                failure_threshold=self._config.breaker_failure_threshold,
                reset_timeout_seconds=self._config.breaker_reset_timeout_seconds,
                counts_as_failure=_counts_as_outage,
                open_error=_open_error,
                on_transition=self._topic_transition,
            )
            self._breakers[key] = breaker
        return breaker

    @property
    def breaker(self) -> CircuitBreaker:
        """The breaker of the topic in the worst state (among equals, the one that failed
        last), for health details; before any publish, the shared one of other topics."""
        if not self._breakers:
            return self.breaker_for(_OTHER_TOPICS)
        return max(
            self._breakers.values(),
            key=lambda b: (
                _SEVERITY[b.state],
                b.last_failure_at or datetime.min.replace(tzinfo=UTC),
            ),
        )

    @property
    def state(self) -> CircuitBreakerState:
        """The worst state over the topics' breakers; CLOSED before any publish."""
        return max(
            (b.state for b in self._breakers.values()),
            key=_SEVERITY.__getitem__,
            default=CircuitBreakerState.CLOSED,
        )

    def retry_after_seconds(self) -> float:
        """Seconds until the last open topic breaker lets a probe through; 0.0 if none."""
        return max((b.retry_after_seconds() for b in self._breakers.values()), default=0.0)

    def health(self) -> DependencyHealth:
        """Healthy while every topic's breaker is closed; degraded (events wait or are
        dropped, the service still answers) while one is open or probing."""
        troubled = [
            (name, b)
            for name, b in self._breakers.items()
            if b.state is not CircuitBreakerState.CLOSED
        ]
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

    def _topic_transition(
        self, name: str, old: CircuitBreakerState, new: CircuitBreakerState
    ) -> None:
        self._transitioned[name] = new
        self._report_worst()

    def _report_worst(self) -> None:
        worst = max(
            self._transitioned.values(),
            key=_SEVERITY.__getitem__,
            default=CircuitBreakerState.CLOSED,
        )
        if worst is self._reported:
            return
        previous, self._reported = self._reported, worst
        if self._on_transition is not None:
            self._on_transition(BREAKER_NAME, previous, worst)

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
                details={"reason": _REASON_REJECTED, "topic": topic},
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
        self._forget_idle_breakers(keep=breaker)

    def _forget_idle_breakers(self, *, keep: CircuitBreaker) -> None:
        """The broker just acknowledged an event: drop the other topics' breakers whose open
        period is over and that no probe has tried since. Such a topic may simply be idle
        (a lifecycle topic after an outage), and would otherwise keep the publisher's state
        and health not closed forever; its next publish starts from a closed breaker."""
        idle = [
            key
            for key, b in self._breakers.items()
            if b is not keep and b.state is CircuitBreakerState.HALF_OPEN and b.allows_call()
        ]
        if not idle:
            return
        for key in idle:
            self._transitioned.pop(self._breakers.pop(key).name, None)
        self._report_worst()

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
                        await self._check_topic(producer, topic, timeout / 2)
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
        except _REJECTED as exc:
            raise EventPublishError(
                f"Kafka refused the event for {topic} ({type(exc).__name__})",
                details={"reason": _REASON_REJECTED, "topic": topic},
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

    @staticmethod
    async def _check_topic(producer: AIOKafkaProducer, topic: str, within: float) -> None:
        """Return once the producer's metadata has `topic`. Raise UnknownTopicOrPartitionError
        if the broker kept answering without it for `within` seconds (auto-creation off; an
        auto-created topic appears within a round or two), TopicAuthorizationFailedError if it
        says the topic is not ours. If the broker does not answer, return and let the send
        fail as an outage: only an answer can prove a topic missing."""
        client = producer.client
        if client.cluster.partitions_for_topic(topic) is not None:
            return
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + within
        await client.add_topic(topic)
        while True:
            answered = bool(await client.force_metadata_update())
            if client.cluster.partitions_for_topic(topic) is not None:
                return
            if topic in client.cluster.unauthorized_topics:
                raise TopicAuthorizationFailedError(topic)
            if not answered:
                return
            if loop.time() >= give_up_at:
                raise UnknownTopicOrPartitionError(topic)
            await asyncio.sleep(_METADATA_RETRY_SECONDS)

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
        if reason in _NOT_OUTAGES:
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
