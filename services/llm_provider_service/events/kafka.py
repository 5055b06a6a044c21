"""The Kafka event publisher: aiokafka behind its own circuit breaker, started lazily.

Delivery is at least once: an event whose acknowledgement timed out may still reach the
broker later, so a caller that retries can publish it twice (consumers drop duplicates by
`event_id`). After any outage-like failure the producer is discarded and the next attempt
builds a new one, so a restarted broker (same address) is picked up without stale
connections or metadata.

Refusals are told apart from outages (`events/reasons.py`): a record or topic the broker
refuses for good is `rejected`, and a topic that stays missing from the broker's metadata
answers for half the send timeout is `unknown_topic`. Neither counts toward the breaker.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
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

logger = logging.getLogger(__name__)

BREAKER_NAME = "kafka"

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
    acknowledged the event (acks=all) within `send_timeout_seconds`; while the breaker is
    open it raises at once without touching the network."""

    def __init__(
        self, config: KafkaPublisherConfig, *, on_transition: TransitionListener | None = None
    ) -> None:
        self._config = config
        self._breaker = CircuitBreaker(
            BREAKER_NAME,
            failure_threshold=config.breaker_failure_threshold,
            reset_timeout_seconds=config.breaker_reset_timeout_seconds,
            counts_as_failure=_counts_as_outage,
            open_error=_open_error,
            on_transition=on_transition,
        )
        self._producer: AIOKafkaProducer | None = None
        self._start_lock = asyncio.Lock()
        self._stopping: set[asyncio.Task[None]] = set()
        self._failing = False
        self._closed = False

    @property
    def breaker(self) -> CircuitBreaker:
        """The publisher's breaker, for health details (last success, failure, error)."""
        return self._breaker

    @property
    def state(self) -> CircuitBreakerState:
        return self._breaker.state

    def retry_after_seconds(self) -> float:
        """Seconds until an open breaker lets a probe through; 0.0 when not open."""
        return self._breaker.retry_after_seconds()

    def health(self) -> DependencyHealth:
        """Healthy while the breaker is closed; degraded (events wait or are dropped, the
        service still answers) while it is open or probing."""
        state = self._breaker.state
        if state is CircuitBreakerState.CLOSED:
            detail = f"kafka at {self._config.bootstrap_servers}"
            return DependencyHealth(status=HealthStatus.HEALTHY, detail=detail)
        detail = f"kafka circuit breaker {state.value}: {self._breaker.last_error}"
        return DependencyHealth(status=HealthStatus.DEGRADED, detail=detail)

    async def publish(self, topic: str, envelope: EventEnvelope[Any]) -> None:
        """Publish one event keyed by its correlation id, with `event_type` and `event_id`
        headers; returns once the broker acknowledged it."""
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
        ]
        try:
            await self._breaker.call(self._send, topic, value, key, headers)
        except EventPublishError as exc:
            self._note_failure(topic, exc)
            raise
        self._note_success()

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
