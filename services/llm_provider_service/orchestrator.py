"""Decides, per request, between a fresh provider call now and a place in the outage queue."""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

from common_core.api_models import ComparisonRequest, ComparisonResult, QueuedResponse
from common_core.enums import CacheMode, ProcessingMode
from common_core.events import LLMProviderEvent, RequestQueuedData
from services.llm_provider_service.callers import Caller
from services.llm_provider_service.errors import (
    CircuitOpenError,
    PayloadTooLargeError,
    ProviderError,
    QueueUnavailableError,
    QuotaExceededError,
)
from services.llm_provider_service.essay_order import Counterbalancer
from services.llm_provider_service.lifecycle_events import LifecycleEvents
from services.llm_provider_service.logging_setup import bind_log_context
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.models import ComparisonJob, QueueRecord
from services.llm_provider_service.owed_results import OwedResults
from services.llm_provider_service.protocols import DrainRate, RequestQueue
from services.llm_provider_service.provider_call import ProviderCall
from services.llm_provider_service.request_rules import Admitted, RequestRules
from services.llm_provider_service.settings import Settings
from services.llm_provider_service.tracing import carrier, trace_id_hex


@dataclass(frozen=True, slots=True)
class Completed:
    """A fresh judgement, answered now (200)."""

    result: ComparisonResult
    provider_seconds: float


@dataclass(frozen=True, slots=True)
class Queued:
    """A request durably queued (202); `retry_after` seconds is a sensible first poll."""

    response: QueuedResponse
    retry_after: int


class ComparisonOrchestrator:
    """The request path: the request rules, the job, then a call now (200) or the queue (202).

    Every call is fresh (`ProviderCall.run`). Only a request that asks for
    `cache_mode=development`, which the request rules refuse unless the settings allow it
    (development and testing), reads the development cache: `submit` asks
    `ProviderCall.cached` before anything else unless the mode is `async`, and
    `ProviderCall.run` writes every fresh judgement of such a request.

    `async` and `batch` requests are always queued (202); a batch request goes to the batch
    lane of the queue (the `RequestQueue` is a `LanedRequestQueue`), which only the batch
    engine claims, with its lane's TTL (`RequestRules.ttl_seconds`).
    """

    def __init__(
        self,
        *,
        rules: RequestRules,
        calls: ProviderCall,
        results: OwedResults,
        counterbalancer: Counterbalancer,
        queue: RequestQueue,
        drain_rate: DrainRate,
        events: LifecycleEvents,
        metrics: ServiceMetrics,
        settings: Settings,
        tracer: Tracer,
    ) -> None:
        self._rules = rules
        self._calls = calls
        self._results = results
        self._counterbalancer = counterbalancer
        self._queue = queue
        self._drain_rate = drain_rate
        self._events = events
        self._metrics = metrics
        self._settings = settings
        self._tracer = tracer

    async def submit(
        self,
        request: ComparisonRequest,
        *,
        trace_id: str | None = None,
        correlation_id: uuid.UUID | None = None,
        request_id: uuid.UUID | None = None,
        caller: Caller | None = None,
    ) -> Completed | Queued:
        """Serve one comparison request according to its processing mode.

        `correlation_id` is used when the request carries none; `request_id` (new if None)
        becomes the result's request_id and the queue_id. Raises `RequestError`s for
        requests that cannot be served as sent (`RequestRules.admit`), `ProviderError`s when
        a provider fails and the mode does not allow queueing, and `QueueError`s when the
        queue cannot take it. A request that names no `processing_mode` gets its caller's
        default mode, else DEFAULT_PROCESSING_MODE.

        `caller` (None in an open service) owns the request, and its policy applies: its
        own callback topics and hosts (403 otherwise), its priority cap (422 above it) and
        its `max_queued` quota (429).
        """
        admitted = self._rules.admit(request, caller)
        job = self._new_job(admitted, trace_id, correlation_id, request_id or uuid.uuid4(), caller)
        bind_log_context(request_id=job.request_id, provider=job.provider.value)
        caller_limit = caller.policy.max_queued if caller else None
        mode = job.request.processing_mode
        if job.request.cache_mode is CacheMode.DEVELOPMENT and mode is not ProcessingMode.ASYNC:
            cached = await self._calls.cached(job, admitted.prompt)
            if cached is not None:
                return Completed(cached, provider_seconds=0.0)
        if mode in (ProcessingMode.ASYNC, ProcessingMode.BATCH):
            # A batch request goes to the batch lane of the queue (`LanedRequestQueue`),
            # never to a realtime call, whatever the breaker says.
            return await self._enqueue(job, reason=mode.value, caller_limit=caller_limit)
        if not self._calls.allows_call(job.provider):
            if mode is ProcessingMode.IMMEDIATE:
                retry_after = max(1.0, self._calls.retry_after_seconds(job.provider))
                raise CircuitOpenError(job.provider, retry_after=retry_after)
            return await self._enqueue(job, reason="circuit_open", caller_limit=caller_limit)
        return await self._call_now(job, admitted, caller_limit)

    async def _call_now(
        self, job: ComparisonJob, admitted: Admitted, caller_limit: int | None
    ) -> Completed | Queued:
        """The fresh call of a request the breaker let through: 200, or queued after a
        retryable failure under `queue_if_unavailable`, or the provider's error."""
        mode = job.request.processing_mode
        try:
            started = time.perf_counter()
            result = await self._calls.run(job, prompt=admitted.prompt)
        except ProviderError as exc:
            if mode is ProcessingMode.QUEUE_IF_UNAVAILABLE and exc.retryable:
                # The provider just failed: do not have a worker call it again at once.
                delay = exc.retry_after or self._settings.queue.retry_base_seconds
                return await self._enqueue(
                    job, reason=exc.code.value, delay_seconds=delay, caller_limit=caller_limit
                )
            self._metrics.comparison_requests.labels(mode.value, "error").inc()
            if not isinstance(exc, CircuitOpenError):  # refused before any call: owes nothing
                await self._results.owe(job, admitted.prompt, error=exc.info())
            raise
        self._metrics.comparison_requests.labels(mode.value, "completed").inc()
        await self._results.owe(job, admitted.prompt, result=result)
        return Completed(result, provider_seconds=time.perf_counter() - started)

    def _new_job(
        self,
        admitted: Admitted,
        trace_id: str | None,
        correlation_id: uuid.UUID | None,
        request_id: uuid.UUID,
        caller: Caller | None,
    ) -> ComparisonJob:
        request = admitted.request
        # Decided once, on arrival, and stored with the job: every attempt, on any replica,
        # presents the essays in this order.
        order, randomized = self._counterbalancer.presentation(request, request_id)
        return ComparisonJob(
            request_id=request_id,
            correlation_id=request.correlation_id or correlation_id or uuid.uuid4(),
            provider=admitted.provider,
            request=request,
            requested_at=datetime.now(UTC),
            # The current span's trace (the route's, continuing the caller's traceparent)
            # names the request, so `trace_id` in results and events finds its spans.
            trace_id=trace_id_hex() or trace_id or uuid.uuid4().hex,
            presentation_order=order,
            order_randomized=randomized,
            caller=caller.name if caller else None,
            trace_context=carrier() or None,
        )

    async def _enqueue(
        self,
        job: ComparisonJob,
        *,
        reason: str,
        delay_seconds: float = 0.0,
        caller_limit: int | None = None,
    ) -> Queued:
        attributes: dict[str, AttributeValue] = {
            "llm_provider.request_id": str(job.request_id),
            "llm.provider": job.provider.value,
            "llm_provider.queue_reason": reason,
        }
        with self._tracer.start_as_current_span(
            "queue.enqueue", kind=SpanKind.PRODUCER, attributes=attributes
        ):
            # The worker's span continues this one, however long the request waits.
            job = job.model_copy(update={"trace_context": carrier() or job.trace_context})
            return await self._enqueue_job(
                job, reason=reason, delay_seconds=delay_seconds, caller_limit=caller_limit
            )

    async def _enqueue_job(
        self,
        job: ComparisonJob,
        *,
        reason: str,
        delay_seconds: float,
        caller_limit: int | None,
    ) -> Queued:
        request = job.request
        size = len(job.model_dump_json().encode())
        limit = self._settings.queue.max_request_bytes
        if size > limit:
            # 413, not QUEUE_FULL: waiting and retrying cannot make this request fit.
            raise PayloadTooLargeError(
                f"the request is {size} bytes, more than the {limit} a queued request may be",
                details={"reason": "too_large_to_queue", "limit": limit, "size": size},
            )
        ttl = self._rules.ttl_seconds(request)
        try:
            record = await self._queue.enqueue(
                job,
                priority=request.priority,
                ttl_seconds=ttl,
                delay_seconds=delay_seconds,
                caller_limit=caller_limit,
            )
        except QuotaExceededError:
            self._metrics.quota_refusals.labels(job.caller, "max_queued").inc()
            raise
        self._metrics.comparison_requests.labels(request.processing_mode.value, "queued").inc()
        await self._events.emit(
            LLMProviderEvent.REQUEST_QUEUED,
            job.correlation_id,
            RequestQueuedData(
                queue_id=record.queue_id,
                provider=record.provider,
                priority=record.priority,
                queued_at=record.queued_at,
                expires_at=record.expires_at,
                reason=reason,
            ),
        )
        return await self._queued(job, record)

    async def _queued(self, job: ComparisonJob, record: QueueRecord) -> Queued:
        """The 202 of a queued request, with its place and a sensible first poll: the wait
        the drain rate estimates, else the rest of the breaker's open period, else 5 s."""
        try:
            position = await self._queue.position(record.queue_id)
        except QueueUnavailableError:
            position = None  # the request is queued; only its place is unknown right now
        wait = await self._drain_rate.estimate_wait(job.provider, position)
        breaker_wait = self._calls.retry_after_seconds(job.provider)
        retry_after = max(1, math.ceil(wait if wait is not None else breaker_wait or 5.0))
        # Never tell a caller to come back after its request will have expired.
        ttl_left = (record.expires_at - datetime.now(UTC)).total_seconds()
        retry_after = max(1, min(retry_after, math.floor(ttl_left)))
        return Queued(record.queued_response(position, wait), retry_after=retry_after)
