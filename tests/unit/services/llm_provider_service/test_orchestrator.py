"""Orchestrator decisions: a fresh call when the provider is up, the queue when it is not."""

from __future__ import annotations

import asyncio

import pytest

from common_core.enums import (
    CircuitBreakerState,
    DeliveryChannel,
    LLMProviderType,
    ProcessingMode,
    QueueStatus,
)
from common_core.events import ComparisonResultData, EventEnvelope
from services.llm_provider_service.breaker import CircuitBreakers, ProviderCircuitBreaker
from services.llm_provider_service.errors import (
    CacheNotAllowedError,
    CircuitOpenError,
    PayloadTooLargeError,
    ProviderAuthError,
    ProviderNotConfiguredError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    QueueFullError,
)
from services.llm_provider_service.orchestrator import Completed, Queued
from services.llm_provider_service.result_deliveries import result_event_id
from tests.factories import make_request
from tests.support.request_path import RequestPath, build_request_path

MOCK = LLMProviderType.MOCK


def build_harness(settings) -> RequestPath:
    # Breakers of their own: three failures open them for a minute, whatever the settings.
    breakers = CircuitBreakers(
        {
            p: ProviderCircuitBreaker(p, failure_threshold=3, reset_timeout_seconds=60)
            for p in LLMProviderType
        }
    )
    return build_request_path(settings, breakers=breakers)


@pytest.fixture
def harness(settings) -> RequestPath:
    return build_harness(settings)


def outage() -> ProviderUnavailableError:
    return ProviderUnavailableError(MOCK, "upstream 503", reason="server_error", status=503)


async def test_provider_up_gives_a_fresh_call_every_time(harness):
    request = make_request()
    first = await harness.orchestrator.submit(request)
    second = await harness.orchestrator.submit(request)
    assert isinstance(first, Completed)
    assert isinstance(second, Completed)
    assert len(harness.provider.calls) == 2  # identical requests, two independent judgements
    assert first.result.request_id != second.result.request_id
    assert not first.result.served_from_cache
    assert (await harness.queue.stats()).total_depth == 0


async def test_result_carries_ids_metadata_and_usage(harness):
    request = make_request(metadata={"batch": "b-1", "pair": [3, 7]})
    outcome = await harness.orchestrator.submit(request, trace_id="a" * 32)
    assert isinstance(outcome, Completed)
    result = outcome.result
    assert result.metadata == {"batch": "b-1", "pair": [3, 7]}
    assert result.trace_id == "a" * 32
    assert result.provider_request_id == "req-1"
    assert result.token_usage.total_tokens == 15
    prompt, _ = harness.provider.calls[0]
    assert "Essay A:" in prompt.user_prompt
    assert "Essay B:" in prompt.user_prompt


@pytest.mark.parametrize(
    "error",
    [outage(), ProviderTimeoutError(MOCK, "slow")],
    ids=["unavailable", "timeout"],
)
async def test_retryable_failure_queues_when_allowed(harness, error):
    harness.provider.script = [error]
    outcome = await harness.orchestrator.submit(make_request())
    assert isinstance(outcome, Queued)
    record = await harness.queue.get(outcome.response.queue_id)
    assert record is not None
    assert record.status is QueueStatus.QUEUED
    assert outcome.response.position_in_queue == 1
    assert outcome.retry_after >= 1
    assert harness.publisher.of_type("request_queued")


async def test_immediate_mode_never_queues(harness):
    harness.provider.script = [outage()]
    with pytest.raises(ProviderUnavailableError):
        await harness.orchestrator.submit(make_request(processing_mode=ProcessingMode.IMMEDIATE))
    assert (await harness.queue.stats()).total_depth == 0


async def test_non_retryable_failure_is_reported_not_queued(harness):
    harness.provider.script = [ProviderAuthError(MOCK, "bad key", status=401)]
    with pytest.raises(ProviderAuthError):
        await harness.orchestrator.submit(make_request())
    assert (await harness.queue.stats()).total_depth == 0


async def test_open_breaker_queues_without_calling_the_provider(harness):
    harness.provider.script = [outage(), outage(), outage()]
    for _ in range(3):
        await harness.orchestrator.submit(make_request())
    assert harness.breakers[MOCK].state is CircuitBreakerState.OPEN
    calls_before = len(harness.provider.calls)
    outcome = await harness.orchestrator.submit(make_request())
    assert isinstance(outcome, Queued)
    assert len(harness.provider.calls) == calls_before
    with pytest.raises(CircuitOpenError):
        await harness.orchestrator.submit(make_request(processing_mode=ProcessingMode.IMMEDIATE))


async def test_async_mode_always_queues_with_every_override(harness):
    overrides = {
        "provider_override": "mock",
        "model_override": "m-2",
        "temperature_override": 0.3,
        "max_tokens_override": 321,
        "system_prompt_override": "Be brief.",
        "reasoning_effort": "high",
        "output_verbosity": "low",
    }
    request = make_request(processing_mode="async", llm_config_overrides=overrides, priority=9)
    outcome = await harness.orchestrator.submit(request)
    assert isinstance(outcome, Queued)
    assert harness.provider.calls == []
    [lease] = await harness.queue.claim(MOCK, limit=1, owner="t")
    kept = lease.job.request.llm_config_overrides
    assert kept is not None
    assert kept.model_dump(mode="json") == overrides
    assert lease.job.request.priority == 9


async def test_provider_override_is_never_swapped(harness, make_settings):
    with pytest.raises(ProviderNotConfiguredError):
        await harness.orchestrator.submit(
            make_request(llm_config_overrides={"provider_override": "anthropic"})
        )
    assert harness.provider.calls == []


async def test_development_cache_mode_is_refused_unless_enabled(harness):
    with pytest.raises(CacheNotAllowedError):
        await harness.orchestrator.submit(make_request(cache_mode="development"))
    assert harness.provider.calls == []


async def test_callback_topic_gets_the_result_event_through_the_outbox(harness):
    request = make_request(callback_topic="huleedu.cj_assessment.results.v1")
    outcome = await harness.orchestrator.submit(request)
    assert isinstance(outcome, Completed)
    assert harness.publisher.of_type("comparison_result") == []  # never published directly
    [delivery] = await harness.outbox.claim(limit=10, lease_seconds=30)
    assert delivery.channel is DeliveryChannel.KAFKA
    assert delivery.destination == "huleedu.cj_assessment.results.v1"
    assert delivery.key == str(outcome.result.correlation_id)
    envelope = EventEnvelope[ComparisonResultData].model_validate_json(delivery.payload)
    assert envelope.event_id == result_event_id(outcome.result.request_id)
    data = envelope.data
    assert data.winner == outcome.result.winner
    assert data.error_detail is None
    assert len(data.request_metadata["prompt_sha256"]) == 64


async def test_no_result_event_is_owed_unless_the_caller_asked(harness):
    await harness.orchestrator.submit(make_request())
    assert await harness.outbox.claim(limit=10, lease_seconds=30) == []


async def test_a_failed_call_owes_an_error_result_event_when_asked(harness):
    harness.provider.script = [ProviderAuthError(MOCK, "bad key", status=401)]
    request = make_request(callback_topic="huleedu.cj_assessment.results.v1")
    with pytest.raises(ProviderAuthError):
        await harness.orchestrator.submit(request)
    [delivery] = await harness.outbox.claim(limit=10, lease_seconds=30)
    data = EventEnvelope[ComparisonResultData].model_validate_json(delivery.payload).data
    assert data.winner is None
    assert data.error_detail is not None
    assert data.error_detail.code == "PROVIDER_AUTH_ERROR"


async def test_lifecycle_events_and_metrics(harness):
    await harness.orchestrator.submit(make_request())
    topics = harness.publisher.topics()
    assert topics == [
        "huleedu.llm_provider.request_started.v1",
        "huleedu.llm_provider.request_completed.v1",
    ]
    value = harness.metrics.registry.get_sample_value(
        "llm_provider_provider_calls_total", {"provider": "mock", "outcome": "success"}
    )
    assert value == 1.0


async def test_deduplication_shares_one_call_among_identical_requests_in_flight(harness):
    harness.provider.gate = asyncio.Event()
    request = make_request(cache_mode="deduplication_only")
    pending = [asyncio.create_task(harness.orchestrator.submit(request)) for _ in range(5)]
    await asyncio.sleep(0.05)
    harness.provider.gate.set()
    outcomes = await asyncio.gather(*pending)
    assert len(harness.provider.calls) == 1
    results = [o.result for o in outcomes if isinstance(o, Completed)]
    assert len(results) == 5
    assert len({r.request_id for r in results}) == 5  # five requests, one shared judgement
    assert len({(r.winner, r.justification) for r in results}) == 1
    assert not any(r.served_from_cache for r in results)
    # Once the call ended nothing is kept: the next identical request is a fresh call.
    await harness.orchestrator.submit(request)
    assert len(harness.provider.calls) == 2


async def test_without_deduplication_concurrent_identical_requests_each_call(harness):
    harness.provider.gate = asyncio.Event()
    pending = [asyncio.create_task(harness.orchestrator.submit(make_request())) for _ in range(5)]
    await asyncio.sleep(0.05)
    harness.provider.gate.set()
    await asyncio.gather(*pending)
    assert len(harness.provider.calls) == 5


async def test_development_cache_serves_only_when_enabled_and_asked(make_settings):
    harness = build_harness(make_settings(enable_response_cache=True))
    asked = make_request(cache_mode="development")
    first = await harness.orchestrator.submit(asked)
    second = await harness.orchestrator.submit(asked)
    fresh = await harness.orchestrator.submit(make_request())
    assert isinstance(first, Completed)
    assert isinstance(second, Completed)
    assert isinstance(fresh, Completed)
    assert not first.result.served_from_cache
    assert second.result.served_from_cache
    assert second.result.winner == first.result.winner
    assert second.result.request_id != first.result.request_id
    assert not fresh.result.served_from_cache
    assert len(harness.provider.calls) == 2
    served = harness.metrics.registry.get_sample_value("llm_provider_cache_served_responses_total")
    assert served == 1.0


async def test_a_request_too_large_to_queue_is_refused_with_413(make_settings):
    harness = build_harness(make_settings(queue_max_request_bytes=2048))
    with pytest.raises(PayloadTooLargeError) as refused:
        await harness.orchestrator.submit(make_request(processing_mode="async", essay_a="x" * 4096))
    assert refused.value.details["reason"] == "too_large_to_queue"
    assert (await harness.queue.stats()).total_depth == 0
    small = await harness.orchestrator.submit(make_request(processing_mode="async"))
    assert isinstance(small, Queued)


async def test_a_full_queue_answers_queue_full_with_retry_after(make_settings):
    harness = build_harness(make_settings(queue_max_size=2))
    for _ in range(2):
        await harness.orchestrator.submit(make_request(processing_mode="async"))
    with pytest.raises(QueueFullError) as full:
        await harness.orchestrator.submit(make_request(processing_mode="async"))
    assert full.value.retry_after is not None
    assert full.value.retry_after >= 1
