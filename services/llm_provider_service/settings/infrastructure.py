"""The sections of the settings for what the service runs on: Redis and the queue, the
worker, Kafka and the outbox, webhooks and traces."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field, SecretStr, field_validator

from common_core.events import DEFAULT_TOPIC_PREFIX
from services.llm_provider_service.settings.providers import blank_is_none
from services.llm_provider_service.settings.sections import ENV_PREFIX, Section


def _named(name: str) -> AliasChoices:
    """A setting whose environment name does not start with its section's prefix."""
    return AliasChoices(f"{ENV_PREFIX}{name}")


class RedisSettings(Section):
    env_prefix: ClassVar[str] = "REDIS_"

    url: str = "redis://localhost:6379/0"
    # REDIS_CLUSTER: the url names any one node of a Redis Cluster, and every store is
    # sharded over its masters (documentation/queue.md, "Redis Cluster").
    cluster: bool = False
    connect_timeout_seconds: float = Field(default=1.0, gt=0)
    socket_timeout_seconds: float = Field(default=1.0, gt=0)
    max_connections: int = Field(default=64, gt=0)
    allow_non_durable: bool = Field(
        default=False, validation_alias=_named("ALLOW_NON_DURABLE_REDIS")
    )
    durability_check_interval_seconds: float = Field(default=60.0, gt=0)
    # /healthz reports the queue degraded once Redis uses this share of its maxmemory.
    memory_degraded_ratio: float = Field(default=0.9, gt=0, le=1)


class QueueSettings(Section):
    """The outage queue; what a `RequestQueue` is built with. Times are in seconds."""

    env_prefix: ClassVar[str] = "QUEUE_"

    # Redis or memory; `None` means "Redis when deployed" (resolved by `Settings`).
    persistence: bool | None = Field(
        default=None, validation_alias=_named("ENABLE_QUEUE_PERSISTENCE")
    )
    key_prefix: str = Field(default="llmq", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    request_ttl_seconds: int = Field(default=4 * 3600, gt=0)
    max_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    max_size: int = Field(default=10_000, gt=0)
    max_attempts: int = Field(default=5, gt=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    poll_interval_seconds: float = Field(default=0.5, gt=0)
    retry_base_seconds: float = Field(default=1.0, gt=0)
    retry_max_seconds: float = Field(default=300.0, gt=0)
    priority_boost_seconds: float = Field(default=60.0, ge=0)
    result_retention_seconds: int = Field(default=24 * 3600, gt=0)
    max_request_bytes: int = Field(default=256 * 1024, gt=0)
    # Bounds on the records of ended requests kept for the status route (besides the
    # retention time): beyond either, the oldest already announced are deleted first.
    result_max_bytes: int = Field(default=128 * 1024 * 1024, gt=0)
    result_max_count: int = Field(default=50_000, gt=0)

    @property
    def priority_boost_ms(self) -> int:
        return round(self.priority_boost_seconds * 1000)


class IdempotencySettings(Section):
    env_prefix: ClassVar[str] = "IDEMPOTENCY_"

    retention_seconds: int = Field(default=24 * 3600, gt=0)
    wait_seconds: float = Field(default=30.0, ge=0)


class WorkerSettings(Section):
    """The background worker that drains the queue."""

    env_prefix: ClassVar[str] = "WORKER_"

    enabled: bool = True
    concurrency_per_provider: int = Field(default=4, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    metrics_port: int | None = Field(default=None, ge=1, le=65535)


class KafkaSettings(Section):
    """Result and lifecycle events; what the Kafka publisher is built with."""

    env_prefix: ClassVar[str] = "KAFKA_"

    # `None` means Kafka when deployed, the log otherwise (resolved by `Settings`).
    enabled: bool | None = None
    bootstrap_servers: str = "localhost:9092"
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    client_id: str = "llm_provider_service"
    # On for real Kafka; the Tansu broker in the tests refuses the idempotent producer.
    enable_idempotence: bool = True
    send_timeout_seconds: float = Field(default=5.0, gt=0)
    breaker_failure_threshold: int = Field(default=3, gt=0)
    breaker_reset_timeout_seconds: float = Field(default=10.0, gt=0)
    unknown_topic_max_attempts: int = Field(default=5, gt=0)

    @property
    def close_timeout_seconds(self) -> float:
        """Bound for stopping a producer: its unsent batches expire after the send timeout."""
        return self.send_timeout_seconds + 1.0


class LifecycleEventsSettings(Section):
    env_prefix: ClassVar[str] = "LIFECYCLE_EVENTS_"

    buffer_size: int = Field(default=10_000, gt=0)
    shutdown_drain_seconds: float = Field(default=5.0, ge=0)


class OutboxSettings(Section):
    """Result delivery: the durable outbox and its relay."""

    env_prefix: ClassVar[str] = "OUTBOX_"

    poll_interval_seconds: float = Field(default=0.5, gt=0)
    batch_size: int = Field(default=50, gt=0)
    send_concurrency: int = Field(default=16, gt=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    retry_base_seconds: float = Field(default=1.0, gt=0)
    retry_max_seconds: float = Field(default=60.0, gt=0)
    unsaved_max_deliveries: int = Field(default=10_000, gt=0)


class WebhookSettings(Section):
    """Webhooks (callback_url). No host is allowed until one is listed."""

    env_prefix: ClassVar[str] = "WEBHOOK_"

    allowed_hosts: tuple[str, ...] = ()
    allow_private_addresses: bool = False
    allow_http: bool = False
    signing_secret: SecretStr | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)
    delivery_deadline_seconds: int = Field(default=24 * 3600, gt=0)

    _blank_secret_is_none = field_validator("signing_secret", mode="before")(blank_is_none)

    @field_validator("signing_secret")
    @classmethod
    def _secret_is_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        return long_enough(value)


def long_enough(value: SecretStr | None) -> SecretStr | None:
    """An HMAC key of at least 16 characters, or none."""
    if value is not None and len(value.get_secret_value()) < 16:
        raise ValueError("must be at least 16 characters: it is an HMAC key")
    return value


class TracingSettings(Section):
    """Traces (tracing.py). Spans are always made, so trace ids and `traceparent` headers are
    real; they leave the process only when the OTLP/HTTP exporter is on."""

    env_prefix: ClassVar[str] = "OTEL_"

    exporter_enabled: bool = False
    exporter_endpoint: str = "http://localhost:4318/v1/traces"
    exporter_headers: dict[str, SecretStr] = Field(default_factory=dict)
    exporter_timeout_seconds: float = Field(default=10.0, gt=0)
    service_name: str = Field(default="llm_provider_service", min_length=1)
