"""Decides, per request, between a fresh provider call now and a place in the outage queue."""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

from common_core.api_models import (
    ComparisonRequest,
    ComparisonResult,
    ErrorInfo,
    QueuedResponse,
)
from common_core.enums import CacheMode, LLMProviderType, PresentationOrder, ProcessingMode
from common_core.events import (
    FailureData,
    LLMProviderEvent,
    RequestCompletedData,
    RequestQueuedData,
    RequestStartedData,
)
from services.llm_provider_service.breaker import CircuitBreakers
from services.llm_provider_service.cache.in_flight import InFlightCalls
from services.llm_provider_service.cache.keys import call_key
from services.llm_provider_service.callers import Caller
from services.llm_provider_service.delivery.webhook_policy import WebhookPolicy
from services.llm_provider_service.errors import (
    CacheNotAllowedError,
    CallbackNotAllowedError,
    CircuitOpenError,
    PayloadTooLargeError,
    ProviderError,
    QueueUnavailableError,
    QuotaExceededError,
    RequestValidationError,
)
from services.llm_provider_service.essay_order import Counterbalancer, in_caller_terms
from services.llm_provider_service.lifecycle_events import LifecycleEvents
from services.llm_provider_service.logging_setup import bind_log_context
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.models import ComparisonJob, ComparisonPrompt, Judgement
from services.llm_provider_service.outbox.unsaved import UnsavedDeliveries
from services.llm_provider_service.prompt import render_prompt
from services.llm_provider_service.protocols import (
    DrainRate,
    LLMProvider,
    RequestQueue,
    ResponseCache,
    ResultOutbox,
)
from services.llm_provider_service.provider_registry import ProviderRegistry
from services.llm_provider_service.providers.pricing import PriceTable
from services.llm_provider_service.result_deliveries import ResultDeliveries
from services.llm_provider_service.results import result_of
from services.llm_provider_service.settings import Settings
from services.llm_provider_service.tracing import carrier, default_tracer, trace_id_hex

logger = logging.getLogger(__name__)

_KAFKA_TOPIC = re.compile(r"(?!\.{1,2}$)[A-Za-z0-9._-]{1,249}")


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
    """The request path: validate the decisions, call through the breaker, or queue.

    Every call is fresh. Only a request that asks for `cache_mode=development`, where the
    settings allow it (development and testing), reads or writes the development cache.
    """

    def __init__(
        self,
        *,
        providers: ProviderRegistry,
        breakers: CircuitBreakers,
        queue: RequestQueue,
        events: LifecycleEvents,
        metrics: ServiceMetrics,
        drain_rate: DrainRate,
        settings: Settings,
        cache: ResponseCache,
        outbox: ResultOutbox,
        deliveries: ResultDeliveries,
        counterbalancer: Counterbalancer,
        prices: PriceTable | None = None,
        unsaved: UnsavedDeliveries | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._tracer = tracer or default_tracer()
        self._counterbalancer = counterbalancer
        self._unsaved = unsaved
        self._cache = cache
        self._outbox = outbox
        self._deliveries = deliveries
        self._webhook_policy = WebhookPolicy.from_settings(settings)
        self._prices = prices or PriceTable(settings.model_prices)
        self._in_flight = InFlightCalls[tuple[Judgement, PresentationOrder]]()
        self._unpriced_models: set[str] = set()  # logged once each, at most 100
        self._providers = providers
        self._breakers = breakers
        self._queue = queue
        self._events = events
        self._metrics = metrics
        self._drain_rate = drain_rate
        self._settings = settings

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
        requests that cannot be served as sent, `ProviderError`s when a provider fails and
        the mode does not allow queueing, and `QueueError`s when the queue cannot take it.
        A request that names no `processing_mode` gets its caller's default mode, else
        DEFAULT_PROCESSING_MODE.

        `caller` (None in an open service) owns the request, and its policy applies: its
        own callback topics and hosts (403 otherwise), its priority cap (422 above it) and
        its `max_queued` quota (429).
        """
        request = self._with_caller_policy(request, caller)
        self._check_modes(request, caller)
        provider = self._providers.resolve(
            request.llm_config_overrides.provider_override if request.llm_config_overrides else None
        )
        # Rendered once, here, in the caller's order: a broken prompt is refused before
        # anything is queued or called, and this rendering names the request (prompt_sha256,
        # the development cache) whichever order the provider is shown.
        prompt = render_prompt(request)
        request_id = request_id or uuid.uuid4()
        # Decided once, on arrival, and stored with the job: every attempt, on any replica,
        # presents the essays in this order.
        order, randomized = self._counterbalancer.presentation(request, request_id)
        job = ComparisonJob(
            request_id=request_id,
            correlation_id=request.correlation_id or correlation_id or uuid.uuid4(),
            provider=provider,
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
        bind_log_context(request_id=request_id, provider=provider.value)
        caller_limit = caller.policy.max_queued if caller else None
        mode = request.processing_mode
        if request.cache_mode is CacheMode.DEVELOPMENT and mode is not ProcessingMode.ASYNC:
            cached = await self._from_cache(job, prompt)
            if cached is not None:
                return Completed(cached, provider_seconds=0.0)
        if mode is ProcessingMode.ASYNC:
            return await self._enqueue(job, reason="async", caller_limit=caller_limit)
        breaker = self._breakers[provider]
        if not breaker.allows_call():
            if mode is ProcessingMode.IMMEDIATE:
                raise CircuitOpenError(
                    provider, retry_after=max(1.0, breaker.retry_after_seconds())
                )
            return await self._enqueue(job, reason="circuit_open", caller_limit=caller_limit)
        try:
            started = time.perf_counter()
            result = await self.execute(job, prompt=prompt)
        except ProviderError as exc:
            if mode is ProcessingMode.QUEUE_IF_UNAVAILABLE and exc.retryable:
                # The provider just failed: do not have a worker call it again at once.
                delay = exc.retry_after or self._settings.queue_retry_base_seconds
                return await self._enqueue(
                    job, reason=exc.code.value, delay_seconds=delay, caller_limit=caller_limit
                )
            self._metrics.comparison_requests.labels(mode.value, "error").inc()
            if not isinstance(exc, CircuitOpenError):  # refused before any call: owes nothing
                error = exc.info()
                await self._owe_result(job, prompt, error=error)
            raise
        self._metrics.comparison_requests.labels(mode.value, "completed").inc()
        await self._owe_result(job, prompt, result=result)
        return Completed(result, provider_seconds=time.perf_counter() - started)

    async def execute(
        self,
        job: ComparisonJob,
        *,
        attempt: int = 1,
        from_queue: bool = False,
        prompt: ComparisonPrompt | None = None,
    ) -> ComparisonResult:
        """One fresh call to the job's provider through its breaker, presenting the essays in
        the job's order, and the answer in the caller's terms.

        `prompt` is the job's prompt rendered in the caller's order when the caller has it
        already (the worker renders here what it needs). Raises the provider's
        `ProviderError` (or `CircuitOpenError` when the breaker refuses the call). Used by
        `submit` and by the queue worker alike.
        """
        provider_name = job.provider
        adapter = self._providers.get(provider_name)
        presented = (
            render_prompt(job.request, swapped=job.swapped)
            if prompt is None or job.swapped
            else prompt
        )
        overrides = job.overrides
        model = overrides.model_override or adapter.default_model
        bind_log_context(provider=provider_name.value, model=model)
        await self._events.emit(
            LLMProviderEvent.REQUEST_STARTED,
            job.correlation_id,
            RequestStartedData(
                request_id=job.request_id,
                provider=provider_name,
                model=model,
                attempt=attempt,
                from_queue=from_queue,
            ),
        )
        started = time.perf_counter()
        attributes: dict[str, AttributeValue] = {
            "llm.provider": provider_name.value,
            "llm.model": model,
            "llm_provider.request_id": str(job.request_id),
            "llm_provider.attempt": attempt,
            "llm_provider.from_queue": from_queue,
        }
        with self._tracer.start_as_current_span(
            "provider.call", kind=SpanKind.CLIENT, attributes=attributes
        ):
            try:
                answer, order = await self._answer(job, adapter, presented, prompt, model)
            except ProviderError as exc:
                await self._record_failure(job, exc)
                raise
        judgement = in_caller_terms(answer, order)
        if job.request.cache_mode is CacheMode.DEVELOPMENT:
            # Keyed by the caller's order and kept in the caller's terms, as a response cache
            # keyed on the request would be: that is the super-rater it exists to show.
            as_sent = prompt or render_prompt(job.request)
            await self._cache.put(call_key(provider_name, model, as_sent, overrides), judgement)
        elapsed = time.perf_counter() - started
        result = self._result(job, judgement, elapsed, order)
        self._record_success(provider_name, result, elapsed)
        await self._events.emit(
            LLMProviderEvent.REQUEST_COMPLETED,
            job.correlation_id,
            RequestCompletedData(
                request_id=job.request_id,
                provider=provider_name,
                model=result.model,
                response_time_ms=result.response_time_ms,
                token_usage=result.token_usage,
                cost_estimate=result.cost_estimate,
            ),
        )
        return result

    async def _answer(
        self,
        job: ComparisonJob,
        adapter: LLMProvider,
        presented: ComparisonPrompt,
        prompt: ComparisonPrompt | None,
        model: str,
    ) -> tuple[Judgement, PresentationOrder]:
        """The provider's answer to `presented`, and the order it was shown in: from this
        job's own call, or with `deduplication_only` from the call of an identical caller
        request in flight, whichever order that one was shown in."""
        overrides = job.overrides

        async def call() -> tuple[Judgement, PresentationOrder]:
            answer = await self._breakers[job.provider].call(adapter.compare, presented, overrides)
            await self._counterbalancer.observe(job, answer)  # once per provider call
            return answer, job.presentation_order

        if job.request.cache_mode is not CacheMode.DEDUPLICATION_ONLY:
            return await call()
        as_sent = prompt or render_prompt(job.request)
        shared, _joined = await self._in_flight.share(
            call_key(job.provider, model, as_sent, overrides), call
        )
        return shared

    async def _owe_result(
        self,
        job: ComparisonJob,
        prompt: ComparisonPrompt,
        *,
        result: ComparisonResult | None = None,
        error: ErrorInfo | None = None,
    ) -> None:
        """A request answered on the request path ended here: when the caller asked for a
        result event (`callback_topic` or `callback_url`), put it in the outbox. Queued
        requests never come here; the relay announces them from the queue."""
        request = job.request
        if not (request.callback_topic or request.callback_url):
            return
        deliveries = self._deliveries.for_outcome(job, result=result, error=error, prompt=prompt)
        try:
            for delivery in deliveries:
                await self._outbox.add(delivery)
        except QueueUnavailableError as exc:
            # Held in this process until the relay can write it (the outbox ignores the
            # deliveries already in); lost only if the hold is full or the process dies.
            if self._unsaved is not None and self._unsaved.keep(deliveries):
                logger.warning(
                    "result event of %s held in process until the outbox answers: %s",
                    job.request_id,
                    exc,
                )
                return
            # The caller has the result in this response; only its copy by event is lost.
            self._metrics.events_published.labels("comparison_result", "lost").inc()
            logger.error("result event of %s not kept: %s", job.request_id, exc)

    async def _from_cache(
        self, job: ComparisonJob, prompt: ComparisonPrompt
    ) -> ComparisonResult | None:
        """The development cache's judgement for this call, if any (development only: the
        request was refused before this point unless ENABLE_RESPONSE_CACHE is set)."""
        adapter = self._providers.get(job.provider)
        model = job.overrides.model_override or adapter.default_model
        key = call_key(job.provider, model, prompt, job.overrides)
        judgement = await self._cache.get(key)
        if judgement is None:
            return None
        self._metrics.cache_served.inc()
        # The cache keeps judgements in the caller's terms; no provider saw this request.
        result = self._result(job, judgement, 0.0, PresentationOrder.AS_SENT)
        return result.model_copy(update={"served_from_cache": True})

    def _with_caller_policy(
        self, request: ComparisonRequest, caller: Caller | None
    ) -> ComparisonRequest:
        """The request with its caller's default mode; `CallerLimitError` (422) for a
        priority above the caller's `max_priority`."""
        if caller is not None:
            caller.check_priority(request.priority)
        if "processing_mode" in request.model_fields_set:
            return request
        own = caller.policy.default_processing_mode if caller else None
        mode = own or self._settings.default_processing_mode
        return request.model_copy(update={"processing_mode": mode})

    def _check_modes(self, request: ComparisonRequest, caller: Caller | None) -> None:
        if request.cache_mode is CacheMode.DEVELOPMENT and not self._settings.enable_response_cache:
            raise CacheNotAllowedError(
                "cache_mode=development needs LLM_PROVIDER_SERVICE_ENABLE_RESPONSE_CACHE, which "
                "only development and testing allow: judgements are never served from a cache "
                "in staging or production",
                details={"field": "cache_mode", "environment": self._settings.environment.value},
            )
        ttl = request.ttl_seconds
        if ttl is not None and ttl > self._settings.queue_max_ttl_seconds:
            raise RequestValidationError(
                f"ttl_seconds must be at most {self._settings.queue_max_ttl_seconds}",
                details={"field": "ttl_seconds"},
            )
        topic = request.callback_topic
        if topic and not _KAFKA_TOPIC.fullmatch(topic):
            # Refused now: the broker would refuse it on every delivery attempt for ever.
            raise CallbackNotAllowedError(
                "callback_topic must be a Kafka topic name: 1 to 249 of A-Z a-z 0-9 . _ -",
                details={"field": "callback_topic", "reason": "invalid_topic_name"},
            )
        if topic and not self._settings.topic_allowed(topic):
            raise CallbackNotAllowedError(
                f"callback_topic {topic!r} is not in the allow-list",
                details={"field": "callback_topic", "reason": "topic_not_allowed"},
            )
        if topic and caller is not None:
            caller.check_topic(topic)
        if request.callback_url:
            target = self._webhook_policy.target(request.callback_url)
            if caller is not None:
                caller.check_callback_host(target.host)

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
        limit = self._settings.queue_max_request_bytes
        if size > limit:
            # 413, not QUEUE_FULL: waiting and retrying cannot make this request fit.
            raise PayloadTooLargeError(
                f"the request is {size} bytes, more than the {limit} a queued request may be",
                details={"reason": "too_large_to_queue", "limit": limit, "size": size},
            )
        ttl = request.ttl_seconds or self._settings.queue_request_ttl_seconds
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
        try:
            position = await self._queue.position(record.queue_id)
        except QueueUnavailableError:
            position = None  # the request is queued; only its place is unknown right now
        wait = await self._drain_rate.estimate_wait(job.provider, position)
        breaker_wait = self._breakers[job.provider].retry_after_seconds()
        retry_after = max(1, math.ceil(wait if wait is not None else breaker_wait or 5.0))
        # Never tell a caller to come back after its request will have expired.
        ttl_left = (record.expires_at - datetime.now(UTC)).total_seconds()
        retry_after = max(1, min(retry_after, math.floor(ttl_left)))
        return Queued(record.queued_response(position, wait), retry_after=retry_after)

    def _result(
        self,
        job: ComparisonJob,
        judgement: Judgement,
        elapsed: float,
        presentation_order: PresentationOrder,
    ) -> ComparisonResult:
        return result_of(job, judgement, elapsed, presentation_order, self._prices)

    def _record_success(
        self, provider: LLMProviderType, result: ComparisonResult, elapsed: float
    ) -> None:
        m = self._metrics
        m.provider_calls.labels(provider.value, "success").inc()
        m.provider_latency.labels(provider.value).observe(elapsed)
        m.tokens.labels(provider.value, "prompt").inc(result.token_usage.prompt_tokens)
        m.tokens.labels(provider.value, "completion").inc(result.token_usage.completion_tokens)
        if result.cost_estimate is not None:
            m.cost.labels(provider.value).inc(result.cost_estimate)
        else:
            m.unpriced.labels(provider.value).inc()
            if result.model not in self._unpriced_models and len(self._unpriced_models) < 100:
                self._unpriced_models.add(result.model)
                logger.warning(
                    "model %s of %s has no price: cost unknown until MODEL_PRICES names it",
                    result.model,
                    provider.value,
                )

    async def _record_failure(self, job: ComparisonJob, exc: ProviderError) -> None:
        self._metrics.provider_calls.labels(job.provider.value, exc.code.value).inc()
        if isinstance(exc, CircuitOpenError):
            return  # no call was made; the breaker's own transitions are already counted
        await self._events.emit(
            LLMProviderEvent.FAILURE,
            job.correlation_id,
            FailureData(
                request_id=job.request_id,
                provider=job.provider,
                error_code=exc.code.value,
                message=exc.message,
                retryable=exc.retryable,
            ),
        )
