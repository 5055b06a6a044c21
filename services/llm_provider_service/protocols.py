"""Ports: the interfaces the orchestrator, worker and routes depend on.

Concrete adapters live in `providers/`, `queue/` and `events/`; only `di/` and `app.py`
import them.
"""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from common_core.api_models import (
    ComparisonResult,
    DependencyHealth,
    ErrorInfo,
    LLMConfigOverrides,
)
from common_core.enums import LLMProviderType, QueueStatus
from common_core.events import EventEnvelope
from services.llm_provider_service.models import (
    ComparisonJob,
    ComparisonPrompt,
    Delivery,
    IdempotencyEntry,
    Judgement,
    Lease,
    OutboxStats,
    PositionCounts,
    QueueRecord,
    QueueStats,
    ReapReport,
    StoreMemory,
)
from services.llm_provider_service.settings import MockErrorKind


class LLMProvider(Protocol):
    """One LLM vendor, asked for one fresh structured judgement per call."""

    @property
    def provider(self) -> LLMProviderType: ...

    @property
    def default_model(self) -> str: ...

    async def compare(self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides) -> Judgement:
        """Make exactly one fresh call to the vendor and return its judgement.

        Never serves a stored answer. Raises only `ProviderError` subclasses: retryable ones
        (`ProviderUnavailableError`, `ProviderTimeoutError`) for outages, which the caller may
        queue and which count toward the circuit breaker; the others for problems that a
        retry will not fix. Vendor SDK exceptions are translated here, with `raise ... from`.
        The one exception that is no `ProviderError`: `MaxTokensTooLowError` (a
        `RequestError`, 422) when the vendor stopped at the token limit before its judgement
        was complete; it is the caller's own setting, so it never counts as a failure.
        A 200 body of any other shape than the vendor's answer is an
        `InvalidProviderResponseError`. A wait for one of the vendor's concurrency slots
        counts toward the call's timeout (`ProviderTimeoutError` when it runs out).
        """
        ...


class RequestQueue(Protocol):
    """Requests waiting for a provider: priority then FIFO, leased to workers, TTL-bounded.

    Ids are `ComparisonJob.request_id`. Every method raises `QueueUnavailableError` when the
    backing store cannot be reached, and nothing else for infrastructure failures.
    """

    async def enqueue(
        self,
        job: ComparisonJob,
        *,
        priority: int,
        ttl_seconds: int,
        delay_seconds: float = 0.0,
        caller_limit: int | None = None,
    ) -> QueueRecord:
        """Store `job` as QUEUED, expiring `ttl_seconds` from now, and return its record.

        With `delay_seconds`, it becomes claimable only then (a call that just failed is not
        retried at once), keeping its place in the order; a delay reaching past the expiry
        is ignored.

        Idempotent on `job.request_id`: if a record with that id exists, it is returned
        unchanged and nothing is added. Raises `QueueFullError` when the queue holds its
        maximum, and `QuotaExceededError` when `job.caller` already has `caller_limit`
        requests waiting or running (the check and the enqueue are one step, however many
        replicas enqueue). When this returns, the record is as durable as the
        implementation promises; the caller may answer 202 only after it returned.
        """
        ...

    async def claim(self, provider: LLMProviderType, *, limit: int, owner: str) -> list[Lease]:
        """Lease up to `limit` due requests for `provider`, highest priority then oldest first.

        Each claimed record becomes PROCESSING with a new fence token and one more attempt.
        Runs `reap` first. Never returns a request past its `expires_at`.
        """
        ...

    async def heartbeat(self, lease: Lease) -> bool:
        """Extend the lease by the lease period. False if `lease` is no longer current; the
        worker must then abandon the call and drop its result. A lease is current while
        its token is the record's, even past its deadline until a reap reclaims it (the
        same holds for `complete`, `fail` and `release`)."""
        ...

    async def complete(self, lease: Lease, result: ComparisonResult) -> bool:
        """Record `result` and make the request COMPLETED. False (and no change) for a
        stale lease."""
        ...

    async def fail(
        self, lease: Lease, error: ErrorInfo, *, retry_in: float | None
    ) -> QueueStatus | None:
        """Record a failed attempt. With `retry_in` and attempts left and time before
        `expires_at`, the request waits `retry_in` seconds and is queued again (keeping its
        place in the order); otherwise it becomes FAILED with `error`. Returns the new
        status, or None (and no change) for a stale lease."""
        ...

    async def release(self, lease: Lease) -> bool:
        """Give the request back as QUEUED without spending an attempt (shutdown, or the
        breaker opened mid-flight). False for a stale lease."""
        ...

    async def get(self, queue_id: UUID) -> QueueRecord | None:
        """The record, or None if unknown or past its retention."""
        ...

    async def position(self, queue_id: UUID) -> int | None:
        """1 + the claimable requests of its provider ahead of it in the order (those waiting
        out a retry backoff are not counted); None unless QUEUED."""
        ...

    async def cancel(self, queue_id: UUID) -> QueueRecord:
        """Make a QUEUED request CANCELLED and return it. Raises `NotFoundError` for an
        unknown id and `ConflictError` once processing began or the request ended."""
        ...

    async def reap(self) -> ReapReport:
        """Housekeeping that must run even when no work is claimed: requeue (or fail, when
        attempts are spent) requests whose lease expired, move due retries back to the
        queue, expire queued requests past their TTL, drop records past retention.

        The report covers everything ended since the previous report, including what the
        reap inside `claim` ended, so the caller can publish each ending exactly once.
        `get`, `position` and `stats` see a TTL expiry only after a reap."""
        ...

    async def stats(self) -> QueueStats:
        """Depths and the oldest queued request, for health, metrics and wait estimates."""
        ...

    async def memory(self) -> StoreMemory | None:
        """The memory of the store behind the queue and whether it refuses writes for it,
        for health and metrics; None when the queue lives in process memory."""
        ...

    async def wait_for_work(self, max_wait: float) -> None:
        """Return when work may have arrived, or after `max_wait` seconds at the latest.
        Never raises: an unreachable store makes it wait out `max_wait` instead."""
        ...

    async def take_unannounced(self, *, limit: int, hide_seconds: float) -> list[QueueRecord]:
        """Ended requests whose result event is not yet in the outbox, oldest first.

        Every terminal transition marks its request unannounced in the same atomic step, and
        its record outlives the retention until `mark_announced`. Each record returned is
        hidden from other callers for `hide_seconds`, after which it is offered again if
        still unannounced (the caller died half-way).
        """
        ...

    async def mark_announced(self, queue_id: UUID) -> None:
        """The request's result event is in the outbox; never offer it again."""
        ...


class EventPublisher(Protocol):
    """Where lifecycle and result events go (Kafka in deployment, the log in development)."""

    async def publish(self, topic: str, envelope: EventEnvelope[Any]) -> None:
        """Publish one event, keyed by its `correlation_id`.

        Raises `EventPublishError` when the event could not be handed over; callers decide
        whether that loses anything (observability events) or must be retried (results).
        """
        ...

    def health(self) -> DependencyHealth:
        """Whether events get through now, for `/healthz` (never does I/O)."""
        ...

    async def readiness(self) -> DependencyHealth:
        """For `/readyz`: unhealthy when events cannot be handed over now (the broker cannot
        be reached, or the publisher's breaker is open or it is closed); may do one short
        round trip to the broker, bounded by the send timeout. Never raises."""
        ...


class ResultOutbox(Protocol):
    """Durable result deliveries: kept until their destination acknowledged them.

    Raises `QueueUnavailableError` when its store is unreachable.
    """

    async def add(self, delivery: Delivery) -> bool:
        """Keep `delivery` for sending now; False (and no change) if its id is already here."""
        ...

    async def claim(self, *, limit: int, lease_seconds: float) -> list[Delivery]:
        """Up to `limit` pending deliveries that are due, oldest due first, each hidden from
        other claims for `lease_seconds` and with `attempts` already counting this one."""
        ...

    async def delivered(self, delivery_id: str) -> None:
        """Acknowledged: no longer pending (its state stays readable for a while)."""
        ...

    async def retry(self, delivery_id: str, *, delay_seconds: float, error: str) -> None:
        """Not acknowledged: due again after `delay_seconds`."""
        ...

    async def give_up(self, delivery_id: str, *, error: str) -> None:
        """Never to be sent again (a webhook past its deadline or refused for good)."""
        ...

    async def for_request(self, request_id: UUID) -> list[Delivery]:
        """Every delivery of one request's result, pending or not, for the status endpoint."""
        ...

    async def stats(self) -> OutboxStats: ...


class FaultInjection(Protocol):
    """Outage drills: make a provider fail on purpose (the mock, in development and testing)."""

    def set_fault(self, error_rate: float, error_kind: MockErrorKind) -> None:
        """Fail this share of calls (0.0-1.0) with this kind of error; raises ValueError for
        values out of range."""
        ...


class IdempotencyStore(Protocol):
    """Idempotency keys and what their request became; shared by every replica when durable."""

    async def reserve(
        self, key: str, entry: IdempotencyEntry, *, hold_seconds: float
    ) -> IdempotencyEntry | None:
        """Atomically reserve `key` for `entry` (outcome pending) for `hold_seconds`.

        Returns None when the caller now holds the key and must `save` or `release` it, or
        the entry already stored under the key (reserved by someone else, or finished).
        Raises `QueueUnavailableError` when the store cannot be reached (the reservation may
        still land later: `release` it), or when this reservation was already released.
        """
        ...

    async def release(self, key: str, entry: IdempotencyEntry, *, fence_seconds: float) -> None:
        """Withdraw a reservation of `entry`: its request created nothing, or `reserve` raised
        and it is unknown whether the reservation was written.

        Deletes the key only while it holds this very reservation, and fences the
        reservation for `fence_seconds`, so a `reserve` of it that reaches the store later
        writes nothing. Raises `QueueUnavailableError` when the store cannot be reached.
        """
        ...

    async def save(self, key: str, entry: IdempotencyEntry, *, keep_seconds: float) -> None:
        """Store the finished entry (its outcome set) for `keep_seconds`, unless the key now
        holds another request's entry (ours lapsed and a retry reserved it since): a late save
        never replaces it."""
        ...

    async def get(self, key: str) -> IdempotencyEntry | None:
        """The entry stored under `key`, if any."""
        ...


class DrainRate(Protocol):
    """How fast each provider's queue drains, for the wait estimate of a 202; shared by every
    replica when durable."""

    async def record(self, provider: LLMProviderType, queue_id: UUID) -> None:
        """Count one completion of the queued request `queue_id`. Never raises."""
        ...

    async def estimate_wait(self, provider: LLMProviderType, position: int | None) -> float | None:
        """Seconds until a request at `position` is likely served, rounded to 0.1: position /
        the rate over the last 300 s; None without a position, with fewer than two completions
        in the window, or when the store cannot be reached. Never raises."""
        ...


class ResponseCache(Protocol):
    """Development-only judgements kept for reuse; staging and production bind one that never
    stores, and `Settings` refuses ENABLE_RESPONSE_CACHE there."""

    async def get(self, key: str) -> Judgement | None:
        """A stored judgement for this call key, or None. Never raises for store failures."""
        ...

    async def put(self, key: str, judgement: Judgement) -> None:
        """Keep `judgement` under `key` for the cache's TTL. Never raises for store failures."""
        ...


class PositionBiasStore(Protocol):
    """Counts of which presented position won each randomized judgement, per provider and
    model, shared by every replica that shares the store (Redis) or kept per process.

    Both methods raise `QueueUnavailableError` when the backing store cannot be reached.
    """

    async def record(self, provider: LLMProviderType, model: str, *, first_won: bool) -> None:
        """Add one judgement: the first-presented essay won it, or the second did.

        Keeps at most `POSITION_BIAS_MAX_MODELS` (provider, model) entries: a judgement of
        a model beyond them is not counted (model names come from vendors' answers, and a
        store must stay bounded whatever they say).
        """
        ...

    async def counts(self) -> list[PositionCounts]:
        """Every entry with at least one judgement, sorted by provider then model."""
        ...


class RateLimiter(Protocol):
    """Each caller's requests-per-minute quota, shared by every replica that shares the
    store (Redis) or kept per process.

    The quota lets a whole minute's allowance go at once, then one request per
    `60 / per_minute` seconds (the generic cell rate algorithm).
    """

    async def acquire(self, caller: str, per_minute: int) -> float:
        """Take one request of `caller`'s allowance: 0.0 when taken, else the seconds until
        one would be (nothing is taken). Raises `QueueUnavailableError` when the store
        cannot be reached."""
        ...
