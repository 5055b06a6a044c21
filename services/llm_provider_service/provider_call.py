"""One fresh call of a job's provider through its breaker, and the one place that asks it."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

from common_core.api_models import ComparisonResult
from common_core.enums import (
    CacheMode,
    CircuitBreakerState,
    LLMProviderType,
    PresentationOrder,
    ServedVia,
)
from common_core.events import (
    FailureData,
    LLMProviderEvent,
    RequestCompletedData,
    RequestStartedData,
)
from services.llm_provider_service.breaker import CircuitBreakers
from services.llm_provider_service.cache.in_flight import InFlightCalls
from services.llm_provider_service.cache.keys import call_key
from services.llm_provider_service.errors import CircuitOpenError, ProviderError
from services.llm_provider_service.essay_order import Counterbalancer, in_caller_terms
from services.llm_provider_service.lifecycle_events import LifecycleEvents
from services.llm_provider_service.logging_setup import bind_log_context
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.models import ComparisonJob, ComparisonPrompt, Judgement
from services.llm_provider_service.prompt import render_prompt
from services.llm_provider_service.protocols import LLMProvider, ResponseCache
from services.llm_provider_service.provider_registry import ProviderRegistry
from services.llm_provider_service.providers.pricing import PriceTable
from services.llm_provider_service.results import result_of

logger = logging.getLogger(__name__)

SharedCalls = InFlightCalls[tuple[Judgement, PresentationOrder]]
"""The `deduplication_only` registry: identical calls in flight share one provider call."""


class ProviderCall:
    """Fresh provider calls for jobs, through each provider's breaker.

    Its consumers (the orchestrator on the request path, the queue worker for queued jobs)
    ask it two things:

    - whether a provider can be called now, and when it can (`allows_call`,
      `retry_after_seconds`, `free_slots`, `breaker_states`): nothing else asks a breaker
      on the way to a provider;
    - for the answer: `run(job)`, one fresh call, or `cached(job, prompt)`, a judgement the
      development cache holds (only ever for `cache_mode=development`, which the request
      rules refuse unless the settings allow it).

    `run` owns everything a call brings: the `request_started`, `request_completed` and
    `failure` events, the `provider.call` span, sharing one call among identical
    `deduplication_only` jobs in flight, the development cache write, the call metrics and
    the result with its cost. It returns the `ComparisonResult` or raises; it never queues,
    never records queue state and owes no result event: that is its consumer's business.
    """

    def __init__(
        self,
        *,
        providers: ProviderRegistry,
        breakers: CircuitBreakers,
        events: LifecycleEvents,
        metrics: ServiceMetrics,
        cache: ResponseCache,
        counterbalancer: Counterbalancer,
        prices: PriceTable,
        in_flight: SharedCalls,
        tracer: Tracer,
    ) -> None:
        self._providers = providers
        self._breakers = breakers
        self._events = events
        self._metrics = metrics
        self._cache = cache
        self._counterbalancer = counterbalancer
        self._prices = prices
        self._in_flight = in_flight
        self._tracer = tracer
        self._unpriced_models: set[str] = set()  # logged once each, at most 100

    def allows_call(self, provider: LLMProviderType) -> bool:
        """True when the breaker would let a call through now: closed, or its open period
        is over and no probe is in flight."""
        return self._breakers[provider].allows_call()

    def retry_after_seconds(self, provider: LLMProviderType) -> float:
        """The rest of the breaker's open period; 0 when it is not open."""
        return self._breakers[provider].retry_after_seconds()

    def free_slots(self, provider: LLMProviderType, *, busy: int, concurrency: int) -> int:
        """How many more calls to `provider` may start now, with `busy` running and at most
        `concurrency` at once: none while the breaker refuses, one probe when half-open."""
        breaker = self._breakers[provider]
        if not breaker.allows_call():
            return 0
        if breaker.state is CircuitBreakerState.HALF_OPEN:
            return 1 if busy == 0 else 0  # one probe; the breaker's own gate would refuse more
        return concurrency - busy

    def breaker_states(self) -> Iterator[tuple[LLMProviderType, CircuitBreakerState]]:
        """Each provider's breaker state now (OPEN becomes HALF_OPEN by time alone)."""
        return ((breaker.provider, breaker.state) for breaker in self._breakers)

    async def cached(self, job: ComparisonJob, prompt: ComparisonPrompt) -> ComparisonResult | None:
        """The development cache's judgement for this call, if any, `served_from_cache`.

        `prompt` is the job's prompt in the caller's order, which keys the cache. Call it
        only for `cache_mode=development`: the request rules refuse that mode unless
        ENABLE_RESPONSE_CACHE is set, and staging and production bind a cache that holds
        nothing."""
        adapter = self._providers.get(job.provider)
        model = job.overrides.model_override or adapter.default_model
        key = call_key(job.provider, model, prompt, job.overrides)
        judgement = await self._cache.get(key)
        if judgement is None:
            return None
        self._metrics.cache_served.inc()
        # The cache keeps judgements in the caller's terms; no provider saw this request.
        result = result_of(job, judgement, 0.0, PresentationOrder.AS_SENT, self._prices)
        return result.model_copy(update={"served_from_cache": True})

    async def run(
        self,
        job: ComparisonJob,
        *,
        attempt: int = 1,
        from_queue: bool = False,
        prompt: ComparisonPrompt | None = None,
    ) -> ComparisonResult:
        """One fresh call to the job's provider through its breaker, presenting the essays in
        the job's order, and the answer in the caller's terms.

        `attempt` and `from_queue` name the attempt in its events and span. `prompt` is the
        job's prompt rendered in the caller's order when the consumer has it already (else
        it is rendered here). Raises the provider's `ProviderError` (`CircuitOpenError` when
        the breaker refuses the call: no call was made) or `MaxTokensTooLowError`.
        """
        adapter = self._providers.get(job.provider)
        presented = (
            render_prompt(job.request, swapped=job.swapped)
            if prompt is None or job.swapped
            else prompt
        )
        model = job.overrides.model_override or adapter.default_model
        bind_log_context(provider=job.provider.value, model=model)
        await self.started(job, model, attempt=attempt, from_queue=from_queue)
        started = time.perf_counter()
        attributes: dict[str, AttributeValue] = {
            "llm.provider": job.provider.value,
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
        if job.request.cache_mode is CacheMode.DEVELOPMENT:
            await self._keep(job, model, prompt, in_caller_terms(answer, order))
        elapsed = time.perf_counter() - started
        return await self._answered(job, answer, order, elapsed, ServedVia.REALTIME)

    async def answered_elsewhere(
        self, job: ComparisonJob, answer: Judgement, *, elapsed: float, served_via: ServedVia
    ) -> ComparisonResult:
        """The result of a fresh call for `job` made outside `run` (a batch entry, a flex
        call), `answer` in the job's essay order: what `run` does with its own answer (the
        counterbalancer observes it, so once per call; caller's terms, price, metrics,
        `request_completed`). `request_started` is the caller's (`started`)."""
        await self._counterbalancer.observe(job, answer)
        return await self._answered(job, answer, job.presentation_order, elapsed, served_via)

    async def _answered(
        self,
        job: ComparisonJob,
        answer: Judgement,
        order: PresentationOrder,
        elapsed: float,
        served_via: ServedVia,
    ) -> ComparisonResult:
        judgement = in_caller_terms(answer, order)
        result = result_of(job, judgement, elapsed, order, self._prices, served_via)
        await self._record_success(job, result, elapsed)
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

    async def _keep(
        self, job: ComparisonJob, model: str, prompt: ComparisonPrompt | None, judgement: Judgement
    ) -> None:
        """The development cache write. Keyed by the caller's order and kept in the caller's
        terms, as a response cache keyed on the request would be: that is the super-rater it
        exists to show."""
        as_sent = prompt or render_prompt(job.request)
        await self._cache.put(call_key(job.provider, model, as_sent, job.overrides), judgement)

    async def started(
        self, job: ComparisonJob, model: str, *, attempt: int, from_queue: bool
    ) -> None:
        """`request_started` for an attempt at `job` on `model` (`run` emits its own)."""
        await self._events.emit(
            LLMProviderEvent.REQUEST_STARTED,
            job.correlation_id,
            RequestStartedData(
                request_id=job.request_id,
                provider=job.provider,
                model=model,
                attempt=attempt,
                from_queue=from_queue,
            ),
        )

    async def _record_success(
        self, job: ComparisonJob, result: ComparisonResult, elapsed: float
    ) -> None:
        provider = job.provider.value
        m = self._metrics
        m.provider_calls.labels(provider, "success").inc()
        m.provider_latency.labels(provider).observe(elapsed)
        m.tokens.labels(provider, "prompt").inc(result.token_usage.prompt_tokens)
        m.tokens.labels(provider, "completion").inc(result.token_usage.completion_tokens)
        if result.cost_estimate is not None:
            m.cost.labels(provider).inc(result.cost_estimate)
        else:
            m.unpriced.labels(provider).inc()
            if result.model not in self._unpriced_models and len(self._unpriced_models) < 100:
                self._unpriced_models.add(result.model)
                logger.warning(
                    "model %s of %s has no price: cost unknown until MODEL_PRICES names it",
                    result.model,
                    provider,
                )
        await self._events.emit(
            LLMProviderEvent.REQUEST_COMPLETED,
            job.correlation_id,
            RequestCompletedData(
                request_id=job.request_id,
                provider=job.provider,
                model=result.model,
                response_time_ms=result.response_time_ms,
                token_usage=result.token_usage,
                cost_estimate=result.cost_estimate,
            ),
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
