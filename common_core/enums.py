"""Enumerations shared by the LLM Provider Service and the services that call it."""

from __future__ import annotations

from enum import StrEnum


class EnvironmentType(StrEnum):
    """Where the service runs; picks the dependency bindings and the safe defaults."""

    DEVELOPMENT = "development"
    TESTING = "testing"
    STAGING = "staging"
    PRODUCTION = "production"

    @property
    def is_deployed(self) -> bool:
        """True for staging and production, where nothing is ever served from a cache."""
        return self in (EnvironmentType.STAGING, EnvironmentType.PRODUCTION)


class LLMProviderType(StrEnum):
    """The LLM vendors the service can call."""

    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    GOOGLE = "google"
    OPENROUTER = "openrouter"
    MOCK = "mock"


class ProcessingMode(StrEnum):
    """How a comparison request is handled when it arrives."""

    IMMEDIATE = "immediate"
    QUEUE_IF_UNAVAILABLE = "queue_if_unavailable"
    ASYNC = "async"
    # Durably queued for the provider's Batch API (about half price, results within hours),
    # or its flex tier where the service allows it; same 202, status and deliveries as async.
    BATCH = "batch"


class ServedVia(StrEnum):
    """The lane that produced a result: a standard call, the provider's flex tier, or its
    Batch API. Every lane is a fresh provider call for this one request."""

    REALTIME = "realtime"
    FLEX = "flex"
    BATCH = "batch"


class CacheMode(StrEnum):
    """Whether a response may be shared; only `none` is allowed in staging and production."""

    NONE = "none"
    DEVELOPMENT = "development"
    DEDUPLICATION_ONLY = "deduplication_only"


class QueueStatus(StrEnum):
    """Lifecycle of a queued request. Terminal statuses never change."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_STATUSES


_TERMINAL_STATUSES = frozenset(
    {QueueStatus.COMPLETED, QueueStatus.FAILED, QueueStatus.EXPIRED, QueueStatus.CANCELLED}
)


class DeliveryChannel(StrEnum):
    """How a result event reaches its consumer besides status polling."""

    KAFKA = "kafka"
    WEBHOOK = "webhook"


class DeliveryState(StrEnum):
    """A result delivery: waiting in the outbox, acknowledged, or given up (a webhook past
    its deadline or refused; a Kafka record the broker refused for good)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class EssayOrder(StrEnum):
    """How the service may present a request's two essays to the provider."""

    RANDOMIZED = "randomized"  # swapped for about half the requests: counterbalances position bias
    AS_SENT = "as_sent"  # exactly as the caller sent them (e.g. "student essay vs anchor")


class PresentationOrder(StrEnum):
    """How the provider saw the essays: `swapped` means the caller's essay_b was shown first,
    as "Essay A". Results always name the winner in the caller's terms."""

    AS_SENT = "as_sent"
    SWAPPED = "swapped"


class PromptTarget(StrEnum):
    """Where a prompt block goes: the system prompt, or the user message."""

    SYSTEM = "system"
    USER_CONTENT = "user_content"


class CacheTTL(StrEnum):
    """How long a provider keeps a cacheable prompt prefix (Anthropic's two durations)."""

    FIVE_MINUTES = "5m"
    ONE_HOUR = "1h"


class ReasoningEffort(StrEnum):
    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class OutputVerbosity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class EssayWinner(StrEnum):
    """The judgement's verdict, spelled as CJ Assessment expects it."""

    ESSAY_A = "Essay A"
    ESSAY_B = "Essay B"


class CircuitBreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


class ErrorCode(StrEnum):
    """Stable error codes of the public API; clients branch on these, so never rename one."""

    VALIDATION_ERROR = "VALIDATION_ERROR"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNKNOWN_PROVIDER = "UNKNOWN_PROVIDER"
    PROVIDER_NOT_CONFIGURED = "PROVIDER_NOT_CONFIGURED"
    PROVIDER_DISABLED = "PROVIDER_DISABLED"
    CACHE_NOT_ALLOWED = "CACHE_NOT_ALLOWED"
    CALLBACK_NOT_ALLOWED = "CALLBACK_NOT_ALLOWED"
    BATCH_NOT_SUPPORTED = "BATCH_NOT_SUPPORTED"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    # Refusals at the HTTP edge, by Quart or by the server layer (`server_errors.py`).
    BAD_REQUEST = "BAD_REQUEST"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    HEADERS_TOO_LARGE = "HEADERS_TOO_LARGE"
    NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    CALLER_LIMIT_EXCEEDED = "CALLER_LIMIT_EXCEEDED"
    MAX_TOKENS_TOO_LOW = "MAX_TOKENS_TOO_LOW"
    CONFLICT = "CONFLICT"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    PROVIDER_AUTH_ERROR = "PROVIDER_AUTH_ERROR"
    PROVIDER_BAD_REQUEST = "PROVIDER_BAD_REQUEST"
    INVALID_PROVIDER_RESPONSE = "INVALID_PROVIDER_RESPONSE"
    PROVIDER_UNAVAILABLE = "PROVIDER_UNAVAILABLE"
    PROVIDER_TIMEOUT = "PROVIDER_TIMEOUT"
    QUEUE_UNAVAILABLE = "QUEUE_UNAVAILABLE"
    QUEUE_FULL = "QUEUE_FULL"
    QUEUE_MEMORY_FULL = "QUEUE_MEMORY_FULL"
    REQUEST_EXPIRED = "REQUEST_EXPIRED"
    REQUEST_CANCELLED = "REQUEST_CANCELLED"
    LEASE_EXPIRED = "LEASE_EXPIRED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
