"""ProviderCall: one fresh call through the breaker, and the one place that asks the breaker."""

from __future__ import annotations

import asyncio
import logging

import pytest

from common_core.enums import CircuitBreakerState, LLMProviderType, ProcessingMode, QueueStatus
from services.llm_provider_service.breaker import CircuitBreakers, ProviderCircuitBreaker
from services.llm_provider_service.errors import CircuitOpenError, ProviderUnavailableError
from services.llm_provider_service.orchestrator import Queued
from services.llm_provider_service.prompt import render_prompt
from services.llm_provider_service.provider_call import ProviderCall, SharedCalls
from services.llm_provider_service.providers.pricing import PriceTable
from tests.factories import FakeClock, make_job, make_request
from tests.fakes import judgement
from tests.support.request_path import RequestPath, build_request_path

MOCK = LLMProviderType.MOCK
RESET_SECONDS = 10.0


def outage() -> ProviderUnavailableError:
    return ProviderUnavailableError(MOCK, "upstream 503", reason="server_error", status=503)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def path(settings, clock: FakeClock) -> RequestPath:
    # One failure opens a breaker for RESET_SECONDS of `clock`.
    breakers = CircuitBreakers(
        {
            p: ProviderCircuitBreaker(
                p, failure_threshold=1, reset_timeout_seconds=RESET_SECONDS, monotonic=clock
            )
            for p in LLMProviderType
        }
    )
    return build_request_path(settings, breakers=breakers)


async def open_breaker(path: RequestPath) -> None:
    path.provider.script = [outage()]
    with pytest.raises(ProviderUnavailableError):
        await path.calls.run(make_job())
    assert path.breakers[MOCK].state is CircuitBreakerState.OPEN


async def test_run_makes_one_fresh_call(settings):
    harness = build_request_path(settings)
    harness.provider.script = [judgement(confidence=2)]
    submitted = await harness.orchestrator.submit(make_request(processing_mode="async"))
    assert isinstance(submitted, Queued)
    [lease] = await harness.queue.claim(MOCK, limit=1, owner="t")
    result = await harness.calls.run(lease.job, attempt=lease.attempt, from_queue=True)
    assert result.confidence == 2
    assert result.request_id == lease.job.request_id
    assert len(harness.provider.calls) == 1


async def test_free_slots_follow_the_breaker(path: RequestPath, clock: FakeClock):
    calls = path.calls
    assert calls.free_slots(MOCK, busy=1, concurrency=4) == 3
    await open_breaker(path)
    assert not calls.allows_call(MOCK)
    assert calls.free_slots(MOCK, busy=0, concurrency=4) == 0
    assert calls.retry_after_seconds(MOCK) == RESET_SECONDS
    clock.advance(RESET_SECONDS)
    assert calls.allows_call(MOCK)  # half-open: one probe
    assert calls.retry_after_seconds(MOCK) == 0.0
    assert calls.free_slots(MOCK, busy=0, concurrency=4) == 1
    assert calls.free_slots(MOCK, busy=1, concurrency=4) == 0
    assert calls.free_slots(LLMProviderType.OPENAI, busy=0, concurrency=4) == 4


async def test_breaker_states_name_every_provider(path: RequestPath, clock: FakeClock):
    await open_breaker(path)
    states = dict(path.calls.breaker_states())
    assert set(states) == set(LLMProviderType)
    assert states[MOCK] is CircuitBreakerState.OPEN
    assert states[LLMProviderType.ANTHROPIC] is CircuitBreakerState.CLOSED
    clock.advance(RESET_SECONDS)
    assert dict(path.calls.breaker_states())[MOCK] is CircuitBreakerState.HALF_OPEN


class ClosedByProviderCall(ProviderCall):
    """Says no provider can be called for 42 s, while every breaker is in fact closed."""

    def allows_call(self, provider: LLMProviderType) -> bool:
        return False

    def retry_after_seconds(self, provider: LLMProviderType) -> float:
        return 42.0

    def free_slots(self, provider: LLMProviderType, *, busy: int, concurrency: int) -> int:
        return 0


async def test_the_orchestrator_and_the_worker_ask_provider_call_not_the_breaker(settings):
    path = build_request_path(settings)
    calls = path.provider_call(ClosedByProviderCall)
    orchestrator = path.orchestrator_with(calls)
    assert path.breakers[MOCK].allows_call()

    with pytest.raises(CircuitOpenError) as refused:
        await orchestrator.submit(make_request(processing_mode=ProcessingMode.IMMEDIATE))
    assert refused.value.retry_after == 42.0
    queued = await orchestrator.submit(make_request())
    assert isinstance(queued, Queued)
    assert queued.retry_after == 42  # no drain rate known yet: the breaker's wait, from calls
    [event] = path.publisher.of_type("request_queued")
    assert event.data.reason == "circuit_open"

    worker = path.worker(calls)
    await worker.run_once()
    record = await path.queue.get(queued.response.queue_id)
    assert record is not None
    assert record.status is QueueStatus.QUEUED  # not claimed
    assert path.provider.calls == []


async def test_a_refused_call_announces_its_start_but_no_failure(path: RequestPath):
    await open_breaker(path)
    path.publisher.events.clear()
    calls_before = len(path.provider.calls)
    with pytest.raises(CircuitOpenError):
        await path.calls.run(make_job(), attempt=2, from_queue=True)
    assert len(path.provider.calls) == calls_before
    [started] = path.publisher.of_type("request_started")
    assert (started.data.attempt, started.data.from_queue) == (2, True)
    assert path.publisher.of_type("failure") == []
    refused = path.metrics.registry.get_sample_value(
        "llm_provider_provider_calls_total", {"provider": "mock", "outcome": "PROVIDER_UNAVAILABLE"}
    )
    assert refused == 2.0  # the outage that opened the breaker, and this refusal


async def test_a_failed_call_emits_failure_and_raises(path: RequestPath):
    path.provider.script = [outage()]
    with pytest.raises(ProviderUnavailableError):
        await path.calls.run(make_job())
    [failure] = path.publisher.of_type("failure")
    assert failure.data.error_code == "PROVIDER_UNAVAILABLE"
    assert failure.data.retryable is True
    assert path.publisher.of_type("request_completed") == []


async def test_the_injected_price_table_prices_every_result(settings):
    prices = PriceTable({"scripted-1": (1.0, 2.0)})
    path = build_request_path(settings, prices=prices)
    result = await path.calls.run(make_job())
    assert result.cost_estimate is not None
    assert result.cost_estimate == prices.estimate("scripted-1", result.token_usage)
    [completed] = path.publisher.of_type("request_completed")
    assert completed.data.cost_estimate == result.cost_estimate


async def test_an_unpriced_model_is_counted_each_time_and_logged_once(
    settings, caplog: pytest.LogCaptureFixture
):
    path = build_request_path(settings)
    with caplog.at_level(logging.WARNING):
        first = await path.calls.run(make_job())
        await path.calls.run(make_job())
    assert first.cost_estimate is None
    unpriced = path.metrics.registry.get_sample_value(
        "llm_provider_unpriced_calls_total", {"provider": "mock"}
    )
    assert unpriced == 2.0
    assert [r.message for r in caplog.records if "has no price" in r.message] == [
        "model scripted-1 of mock has no price: cost unknown until MODEL_PRICES names it"
    ]


async def test_the_development_cache_is_written_only_by_development_requests(settings):
    path = build_request_path(settings)
    plain = make_job(request=make_request())
    await path.calls.run(plain)
    development = make_job(request=make_request(cache_mode="development"))
    prompt = render_prompt(development.request)
    assert await path.calls.cached(development, prompt) is None  # the plain call kept nothing
    fresh = await path.calls.run(development, prompt=prompt)
    cached = await path.calls.cached(make_job(request=development.request), prompt)
    assert cached is not None
    assert cached.served_from_cache
    assert not fresh.served_from_cache
    assert (cached.winner, cached.justification) == (fresh.winner, fresh.justification)
    assert len(path.provider.calls) == 2


async def test_provider_calls_sharing_one_registry_share_identical_calls(settings):
    path = build_request_path(settings)
    shared = SharedCalls()
    replicas = [path.provider_call(in_flight=shared) for _ in range(2)]
    path.provider.gate = asyncio.Event()
    request = make_request(cache_mode="deduplication_only")
    pending = [asyncio.create_task(c.run(make_job(request=request))) for c in replicas]
    await asyncio.sleep(0.05)
    path.provider.gate.set()
    first, second = await asyncio.gather(*pending)
    assert len(path.provider.calls) == 1
    assert first.request_id != second.request_id
    assert first.justification == second.justification


async def test_an_answer_from_elsewhere_becomes_the_result_run_would_give(settings):
    """A batch row or a flex answer: observed once, in the caller's terms, counted and
    announced as a call `run` made."""
    from common_core.enums import EssayWinner, PresentationOrder, ServedVia

    harness = build_request_path(settings)
    job = make_job(presentation_order=PresentationOrder.SWAPPED, order_randomized=True)

    result = await harness.calls.answered_elsewhere(
        job, judgement(EssayWinner.ESSAY_A), elapsed=42.0, served_via=ServedVia.BATCH
    )

    assert result.winner is EssayWinner.ESSAY_B  # the provider saw essay B first
    assert result.presentation_order is PresentationOrder.SWAPPED
    assert result.response_time_ms == 42_000
    observed = harness.metrics.registry.get_sample_value(
        "llm_provider_presentation_order_total", {"order": "swapped"}
    )
    assert observed == 1  # the counterbalancer saw the answer once
    assert len(harness.publisher.of_type("request_completed")) == 1
    assert harness.provider.calls == []  # no call made here
