"""The queue worker: drains queued requests when their provider's breaker allows it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import socket
import uuid

from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

from common_core.api_models import ComparisonResult, ErrorInfo
from common_core.enums import ErrorCode, LLMProviderType
from services.llm_provider_service.errors import (
    CircuitOpenError,
    MaxTokensTooLowError,
    ProviderError,
    QueueUnavailableError,
)
from services.llm_provider_service.lease_outcomes import LeaseOutcomes
from services.llm_provider_service.lifecycle_events import LifecycleEvents
from services.llm_provider_service.logging_setup import bind_log_context
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.models import Lease
from services.llm_provider_service.protocols import DrainRate, RequestQueue
from services.llm_provider_service.provider_call import ProviderCall
from services.llm_provider_service.queue_events import announce_reaped
from services.llm_provider_service.settings import Settings
from services.llm_provider_service.tracing import extract

logger = logging.getLogger(__name__)


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
        self._settings = settings
        self.owner = owner or worker_identity()
        self._outcomes = LeaseOutcomes(
            queue=queue,
            events=events,
            metrics=metrics,
            drain_rate=drain_rate,
            settings=settings,
            rng=rng,
        )
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
                # On a Redis Cluster a shard whose master is down stops no other provider's
                # claims. (On one Redis the reap above has failed already.)
                unavailable = unavailable or exc
                continue
            for lease in leases:
                task = asyncio.create_task(self._process(lease), name=f"lease-{lease.queue_id}")
                self._inflight[provider].add(task)
                task.add_done_callback(functools.partial(self._finished, provider))
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

    def _finished(self, provider: LLMProviderType, task: asyncio.Task[None]) -> None:
        self._inflight[provider].discard(task)
        self._slot_freed.set()

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
            "llm.provider": job.provider.value,
        }
        context = extract(job.trace_context)
        with self._tracer.start_as_current_span(
            "queue.run", context=context, kind=SpanKind.CONSUMER, attributes=attributes
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
            await self._outcomes.released(lease)  # shutdown: give it back unspent
            raise
        except CircuitOpenError:
            await self._outcomes.released(lease)
        except (ProviderError, MaxTokensTooLowError) as exc:
            # MaxTokensTooLowError: the caller's own limit cut the answer off; FAILED at once.
            await self._outcomes.failed(lease, exc.info(), exc)
        except Exception as exc:
            logger.exception("request %s crashed its attempt", lease.queue_id)
            info = ErrorInfo(
                code=ErrorCode.INTERNAL_ERROR.value,
                message=f"the service failed serving it ({type(exc).__name__}); it was logged",
            )
            await self._outcomes.failed(lease, info, None)
        else:
            # Both ends on the queue's clock: a replica's clock skew never enters the metric.
            claimed = lease.claimed_at or lease.queued_at
            wait = (claimed - lease.queued_at).total_seconds()
            await self._outcomes.completed(lease, result, wait=wait)
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

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """The retry delay of a failed attempt (`LeaseOutcomes.backoff`)."""
        return self._outcomes.backoff(attempt, retry_after)

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
