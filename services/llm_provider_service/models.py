"""The service's internal value types: what flows between the orchestrator, providers and queue."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from common_core.api_models import (
    JUSTIFICATION_MAX_CHARS,
    ComparisonResult,
    DeliveryStatus,
    ErrorInfo,
    QueuedResponse,
    QueueStatusResponse,
    TokenUsage,
)
from common_core.enums import (
    CacheTTL,
    DeliveryChannel,
    DeliveryState,
    EssayWinner,
    LLMProviderType,
    QueueStatus,
)

# The queued job is one of the service's value types; `job.py` defines it with its stored form.
from services.llm_provider_service.job import ComparisonJob as ComparisonJob

# Where a queued request's status is read: the 202's `status_url` and `Location`.
STATUS_PATH = "/api/v1/status/{queue_id}"


class PromptPart(BaseModel):
    """One piece of a prompt; `cache_ttl` is set on a piece the provider may cache, which
    only ever happens within the prompt's stable prefix (see `ComparisonPrompt`)."""

    model_config = ConfigDict(frozen=True)

    text: str
    cache_ttl: CacheTTL | None = None


class ComparisonPrompt(BaseModel):
    """The text a provider is asked to judge, with the essays already placed in it: system
    parts, then user parts, in the order they are sent.

    Built from plain strings (`ComparisonPrompt.plain`, one uncached part each) or from
    prompt blocks (`prompt.py`). Adapters without per-part
    caching send `system_prompt` and `user_prompt`, the parts joined by a blank line.
    """

    model_config = ConfigDict(frozen=True)

    system_parts: tuple[PromptPart, ...]
    user_parts: tuple[PromptPart, ...]

    @classmethod
    def plain(cls, *, user_prompt: str, system_prompt: str) -> ComparisonPrompt:
        return cls(
            system_parts=(PromptPart(text=system_prompt),),
            user_parts=(PromptPart(text=user_prompt),),
        )

    @property
    def parts(self) -> tuple[PromptPart, ...]:
        """Every part, in the order sent: system, then user."""
        return (*self.system_parts, *self.user_parts)

    @property
    def system_prompt(self) -> str:
        return _joined(self.system_parts)

    @property
    def user_prompt(self) -> str:
        return _joined(self.user_parts)

    @property
    def cached_prefix(self) -> tuple[PromptPart, ...]:
        """The leading cacheable parts, system then user, up to the first part that is not:
        the stable prefix a provider may cache. A cacheable part after an uncached one is
        not in it, since the uncached text before it changes the prefix on every request.
        Empty when the first part is not cacheable."""
        prefix: list[PromptPart] = []
        for part in self.parts:
            if part.cache_ttl is None:
                break
            prefix.append(part)
        return tuple(prefix)


def _joined(parts: tuple[PromptPart, ...]) -> str:
    return "\n\n".join(part.text for part in parts)


class Judgement(BaseModel):
    """One provider's structured answer, before the service adds ids and timings."""

    model_config = ConfigDict(frozen=True)

    winner: EssayWinner
    justification: str = Field(max_length=JUSTIFICATION_MAX_CHARS)
    confidence: int = Field(ge=1, le=5)
    model: str
    token_usage: TokenUsage = Field(default_factory=TokenUsage)
    provider_request_id: str | None = None


class QueueRecord(BaseModel):
    """A queued request as the queue keeps it; `status` follows `QueueStatus`'s lifecycle."""

    queue_id: UUID
    correlation_id: UUID
    provider: LLMProviderType
    status: QueueStatus
    priority: int
    queued_at: datetime
    updated_at: datetime
    expires_at: datetime
    attempts: int = 0
    max_attempts: int
    job: ComparisonJob
    result: ComparisonResult | None = None
    error: ErrorInfo | None = None

    def queued_response(
        self, position: int | None = None, estimated_wait_seconds: float | None = None
    ) -> QueuedResponse:
        """The 202 body of this queued request (the first answer, and an idempotent replay)."""
        return QueuedResponse(
            queue_id=self.queue_id,
            correlation_id=self.correlation_id,
            status_url=STATUS_PATH.format(queue_id=self.queue_id),
            queued_at=self.queued_at,
            expires_at=self.expires_at,
            position_in_queue=position,
            estimated_wait_seconds=estimated_wait_seconds,
        )

    def status_response(
        self, position: int | None, deliveries: list[Delivery] | None = None
    ) -> QueueStatusResponse:
        """The public status body (`GET /api/v1/status`, the status WebSocket)."""
        return QueueStatusResponse(
            queue_id=self.queue_id,
            correlation_id=self.correlation_id,
            status=self.status,
            provider=self.provider,
            queued_at=self.queued_at,
            updated_at=self.updated_at,
            expires_at=self.expires_at,
            attempts=self.attempts,
            position_in_queue=position,
            result=self.result,
            error=self.error,
            deliveries=[d.status() for d in deliveries or ()],
        )


class IdempotencyEntry(BaseModel):
    """What an idempotency key remembers: the body's fingerprint and what the request became.
    `outcome` is `pending` while the first request with the key is being served."""

    fingerprint: str
    request_id: UUID
    outcome: Literal["pending", "completed", "queued"] = "pending"
    result: ComparisonResult | None = None
    queued: QueuedResponse | None = None
    retry_after: int = 1


@dataclass(frozen=True, slots=True)
class Lease:
    """A worker's claim on one request. Only the holder of the current `token` may heartbeat,
    complete, fail or release it; a stale token changes nothing."""

    queue_id: UUID
    token: int
    owner: str
    attempt: int
    job: ComparisonJob
    queued_at: datetime
    claimed_at: datetime | None = None  # on the queue's clock, like queued_at
    expires_at: datetime | None = None  # the request's TTL end; None from a queue that omits it


@dataclass(frozen=True, slots=True)
class ReapReport:
    """What one housekeeping pass changed, for events and metrics."""

    expired: tuple[QueueRecord, ...] = ()
    failed: tuple[QueueRecord, ...] = ()
    lease_expiries: int = 0
    promoted: int = 0


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Depth per provider and priority, and the oldest queued request's enqueue time and its
    age, measured on the queue's own clock (Redis TIME), never a replica's."""

    depth: dict[LLMProviderType, int] = field(default_factory=dict)
    depth_by_priority: dict[int, int] = field(default_factory=dict)
    processing: int = 0
    oldest_queued_at: datetime | None = None
    oldest_age_seconds: float | None = None

    @property
    def total_depth(self) -> int:
        return sum(self.depth.values())


@dataclass(frozen=True, slots=True)
class StoreMemory:
    """The queue's store's memory (Redis `INFO memory`): `used_bytes` of `max_bytes` (0: no
    `maxmemory` set), and whether a write was just refused for memory (OOM)."""

    used_bytes: int
    max_bytes: int
    writes_refused: bool = False
    # On a Redis Cluster: the queue shards (providers) whose master could not be asked; what
    # is routed to them gets 503 while the others serve. Empty on a single Redis.
    unreachable: tuple[str, ...] = ()

    @property
    def used_ratio(self) -> float | None:
        """`used_bytes / max_bytes`, None without a `maxmemory`."""
        return self.used_bytes / self.max_bytes if self.max_bytes > 0 else None


class Delivery(BaseModel):
    """One result event owed to one destination, as the outbox keeps it.

    `delivery_id` is derived from the event id and channel, so announcing the same ended
    request twice (a relay crashed half-way) adds nothing the second time.
    """

    delivery_id: str
    request_id: UUID
    channel: DeliveryChannel
    destination: str  # a Kafka topic or a webhook URL
    event_id: UUID
    event_type: str
    key: str  # the Kafka key: the correlation id
    payload: str  # the event envelope, as JSON
    created_at: datetime
    deadline: datetime | None = None  # webhooks are given up after this; Kafka has none
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None

    def status(self) -> DeliveryStatus:
        return DeliveryStatus(
            channel=self.channel,
            destination=self.destination,
            state=self.state,
            attempts=self.attempts,
            last_error=self.last_error,
            next_attempt_at=self.next_attempt_at if self.state is DeliveryState.PENDING else None,
            delivered_at=self.delivered_at,
        )


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Pending deliveries per channel and the age of the oldest one."""

    pending: dict[DeliveryChannel, int] = field(default_factory=dict)
    oldest_age_seconds: float | None = None


# How many (provider, model) entries a position-bias store keeps: model names come from the
# vendors' answers (and the mock echoes any model_override), so the store is bounded.
POSITION_BIAS_MAX_MODELS = 200


@dataclass(frozen=True, slots=True)
class PositionCounts:
    """Randomized judgements of one provider's model, and how many the first-presented
    essay won."""

    provider: LLMProviderType
    model: str
    judgements: int
    first_position_wins: int
