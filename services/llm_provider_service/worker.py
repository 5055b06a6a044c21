"""The queue worker: drains queued requests when their provider's breaker allows it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

from common_core.api_models import ComparisonResult, ErrorInfo
from common_core.enums import ErrorCode, LLMProviderType, QueueStatus
from services.llm_provider_service.errors import (
    CircuitOpenError,
    MaxTokensTooLowError,
    ProviderError,
    QueueUnavailableError,
)
from services.llm_provider_service.lifecycle_events import LifecycleEvents
from services.llm_provider_service.logging_setup import bind_log_context
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.models import Lease
from services.llm_provider_service.protocols import DrainRate, RequestQueue
from services.llm_provider_service.provider_call import ProviderCall
from services.llm_provider_service.queue_events import announce_reaped, announce_status
from services.llm_provider_service.settings import Settings
from services.llm_provider_service.tracing import extract

logger = logging.getLogger(__name__)

T = TypeVar("T")
_LANDED_PATIENCE_SECONDS = 300.0


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class QueueWorker:
    """Claims leased requests per provider, runs them, and records every outcome.

    Correctness never depends on the breaker: a claimed request whose provider fails is
    retried with backoff by the queue, or released unspent if the breaker refused the call.
    """

    def __init__(
        self,
        *,
        queue: RequestQueue,
        calls: ProviderCall,
        events: LifecycleEvents,
        metrics: ServiceMetrics,
        drain_rate: DrainRate,
        settings: Settings,
        tracer: Tracer,
        owner: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._tracer = tracer
        self._queue = queue
        self._calls = calls
        self._events = events
        self._metrics = metrics
        self._drain_rate = drain_rate
        self._settings = settings
        self.owner = owner or worker_identity()
        self._rng = rng or random.Random()
        self._inflight: dict[LLMProviderType, set[asyncio.Task[None]]] = {
            p: set() for p in LLMProviderType
        }
        self._slot_freed = asyncio.Event()
        self._lost_leases: set[uuid.UUID] = set()
        self.healthy = True

    @property
    def in_flight(self) -> int:
        return sum(len(tasks) for tasks in self._inflight.values())

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set, then drain within the grace period and release the rest."""
        logger.info("queue worker %s started", self.owner)
        while not stop.is_set():
            try:
                await self.run_once()
                self.healthy = True
            except QueueUnavailableError as exc:
                if self.healthy:
                    logger.warning("queue unavailable, worker keeps retrying: %s", exc)
                self.healthy = False
            await self._wait(stop)
        await self._drain()
        logger.info("queue worker %s stopped", self.owner)

    async def run_once(self) -> None:
        """One pass: housekeeping, then claims for every provider whose breaker allows."""
        await announce_reaped(await self._queue.reap(), self._events, self._metrics)
        unavailable: QueueUnavailableError | None = None
        for provider in LLMProviderType:
            limit = self._free_slots(provider)
            if limit <= 0:
                continue
            try:
                leases = await self._queue.claim(provider, limit=limit, owner=self.owner)
            except QueueUnavailableError as exc:
                # On a Redis Cluster each provider's queue is a shard of its own: one whose
                # master is down must not stop the claims of the others. (On one Redis the
                # reap above has failed already when Redis is down.)
                unavailable = unavailable or exc
                continue
            for lease in leases:
                task = asyncio.create_task(self._process(lease), name=f"lease-{lease.queue_id}")
                self._inflight[provider].add(task)
                task.add_done_callback(self._on_done(provider))
        if unavailable is not None:
            raise unavailable
        self._metrics.observe_queue(await self._queue.stats())
        # Set here too: OPEN becomes HALF_OPEN by time alone, not by a call.
        for provider, state in self._calls.breaker_states():
            self._metrics.set_breaker_state(provider, state)

    def _free_slots(self, provider: LLMProviderType) -> int:
        return self._calls.free_slots(
            provider,
            busy=len(self._inflight[provider]),
            concurrency=self._settings.worker.concurrency_per_provider,
        )

    def _on_done(self, provider: LLMProviderType) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            self._inflight[provider].discard(task)
            self._slot_freed.set()

        return done

    async def _wait(self, stop: asyncio.Event) -> None:
        self._slot_freed.clear()
        waiters = {
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self._slot_freed.wait()),
            asyncio.ensure_future(
                self._queue.wait_for_work(self._settings.queue.poll_interval_seconds)
            ),
        }
        try:
            # The outer limit is longer than the queue's own wait, which normally returns by
            # itself: cancelling a blocking Redis call costs a reconnect.
            await asyncio.wait(
                waiters,
                timeout=self._settings.queue.poll_interval_seconds * 2,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _process(self, lease: Lease) -> None:
        # This task's lines, and the call's, name the job (`logging_setup.py`).
        job = lease.job
        bind_log_context(
            queue_id=lease.queue_id,
            correlation_id=job.correlation_id,
            caller=job.caller,
            provider=job.provider.value,
            attempt=lease.attempt,
        )
        # A child of the span that queued the request (its stored context), so the attempt
        # is in the request's trace however long it waited; `tracing.md` says why a child.
        attributes: dict[str, AttributeValue] = {
            "llm_provider.queue_id": str(lease.queue_id),
            "llm_provider.attempt": lease.attempt,
            "llm.provider": lease.job.provider.value,
        }
        with self._tracer.start_as_current_span(
            "queue.run",
            context=extract(lease.job.trace_context),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ):
            await self._attempt(lease)

    async def _attempt(self, lease: Lease) -> None:
        call = asyncio.create_task(
            self._calls.run(lease.job, attempt=lease.attempt, from_queue=True)
        )
        beat = asyncio.create_task(self._keep_alive(lease, call))
        try:
            result = await call
        except asyncio.CancelledError:
            if lease.queue_id in self._lost_leases:
                self._lost_leases.discard(lease.queue_id)
                logger.warning("lease on %s lost; its result is dropped", lease.queue_id)
                return
            await self._safely(self._queue.release(lease))  # shutdown: give it back unspent
            raise
        except CircuitOpenError:
            await self._safely(self._queue.release(lease))
        except (ProviderError, MaxTokensTooLowError) as exc:
            # MaxTokensTooLowError: the caller's own limit cut the answer off; FAILED at once.
            await self._failed(lease, exc.info(), exc)
        except Exception as exc:
            logger.exception("request %s crashed its attempt", lease.queue_id)
            info = ErrorInfo(
                code=ErrorCode.INTERNAL_ERROR.value,
                message=f"the service failed serving it ({type(exc).__name__}); it was logged",
            )
            await self._failed(lease, info, None)
        else:
            # Both ends on the queue's clock: a replica's clock skew never enters the metric.
            claimed = lease.claimed_at or lease.queued_at
            await self._completed(lease, result, wait=(claimed - lease.queued_at).total_seconds())
        finally:
            beat.cancel()

    async def _keep_alive(self, lease: Lease, call: asyncio.Task[ComparisonResult]) -> None:
        interval = self._settings.queue.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                alive = await self._queue.heartbeat(lease)
            except QueueUnavailableError:
                continue  # the lease may still be ours; the next beat will tell
            if not alive:
                self._lost_leases.add(lease.queue_id)
                call.cancel()
                return

    async def _completed(self, lease: Lease, result: ComparisonResult, *, wait: float) -> None:
        stored = await self._safely(self._queue.complete(lease, result))
        if stored is None:  # the queue did not answer: the write may or may not have landed
            stored = await self._landed(lease, result)
        if not stored:
            logger.warning("late result for %s dropped: lease no longer held", lease.queue_id)
            return
        await self._drain_rate.record(lease.job.provider, lease.queue_id)
        self._metrics.queue_wait.labels(lease.job.provider.value).observe(max(0.0, wait))
        self._metrics.record_transition(QueueStatus.COMPLETED)
        await announce_status(self._events, lease, QueueStatus.COMPLETED, None)

    async def _landed(self, lease: Lease, result: ComparisonResult) -> bool:
        """Complete again once the queue answers: `complete` is idempotent for our token, so
        True means our result is the one stored (whether the first write landed or this one
        did) and False that the lease was lost meanwhile. Gives up only after a long outage
        (`_LANDED_PATIENCE_SECONDS`), when the lease has long been reclaimed anyway."""
        deadline = time.monotonic() + _LANDED_PATIENCE_SECONDS
        while time.monotonic() < deadline:
            try:
                return await self._queue.complete(lease, result)
            except QueueUnavailableError:
                await asyncio.sleep(0.5)
        return False

    async def _failed(
        self, lease: Lease, info: ErrorInfo, exc: ProviderError | MaxTokensTooLowError | None
    ) -> None:
        retryable = exc is None or exc.retryable
        retry_in = self.backoff(lease.attempt, exc.retry_after if exc else None)
        status = await self._safely(
            self._queue.fail(lease, info, retry_in=retry_in if retryable else None)
        )
        if status is QueueStatus.QUEUED:
            self._metrics.queue_retries.labels(lease.job.provider.value).inc()
        elif status is QueueStatus.FAILED:
            self._metrics.record_transition(QueueStatus.FAILED)
            await announce_status(self._events, lease, QueueStatus.FAILED, info)

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff, drawn uniformly between the base delay and the attempt's
        ceiling (jitter spreads a recovering provider's backlog), never shorter than the
        vendor's Retry-After, which may exceed QUEUE_RETRY_MAX_SECONDS: the vendor knows."""
        base = self._settings.queue.retry_base_seconds
        ceiling = min(self._settings.queue.retry_max_seconds, base * 2 ** max(0, attempt - 1))
        delay = self._rng.uniform(base, max(base, ceiling))
        return max(delay, retry_after or 0.0)

    async def _safely(self, op: Awaitable[T]) -> T | None:
        """Run a queue write; if the queue is unreachable the lease simply expires and the
        request is reclaimed later (at-least-once), so log and carry on."""
        try:
            return await op
        except QueueUnavailableError as exc:
            logger.warning("queue write failed, the lease will expire and be retried: %s", exc)
            return None

    async def _drain(self) -> None:
        tasks = {t for group in self._inflight.values() for t in group}
        if not tasks:
            return
        grace = self._settings.worker.shutdown_grace_seconds
        logger.info("waiting up to %.1fs for %d in-flight requests", grace, len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            logger.info("released %d requests that did not finish in time", len(pending))
