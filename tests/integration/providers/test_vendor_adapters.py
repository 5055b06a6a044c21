"""What every vendor adapter does alike, through its real SDK over real HTTP to the fake
upstream: HTTP faults, rate limits, hangs, unreachable hosts, unusable answers and their
re-asks, and the concurrency cap. One test, four vendors (`vendor_adapters.py`)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from common_core.api_models import LLMConfigOverrides
from services.llm_provider_service import errors
from services.llm_provider_service.models import Judgement
from tests.integration.providers.vendor_adapters import (
    PROMPT,
    TIMEOUT_SECONDS,
    VendorAdapter,
)

NO_OVERRIDES = LLMConfigOverrides()


async def test_a_valid_judgement_from_one_call_and_cached_tokens_on_a_repeat(
    vendor_adapter: VendorAdapter,
) -> None:
    case, provider = vendor_adapter.case, vendor_adapter.make()

    first = await provider.compare(PROMPT, NO_OVERRIDES)
    one_call = vendor_adapter.requests()
    second = await provider.compare(PROMPT, NO_OVERRIDES)

    assert provider.provider is case.provider
    assert provider.default_model == case.model
    assert one_call == 1
    vendor_adapter.assert_valid(first)
    vendor_adapter.assert_valid(second)
    assert first.token_usage.cached_prompt_tokens == 0
    assert 0 < second.token_usage.cached_prompt_tokens <= second.token_usage.prompt_tokens
    assert first.provider_request_id != second.provider_request_id  # two fresh calls
    assert vendor_adapter.requests() == 2


UNAVAILABLE = errors.ProviderUnavailableError
HTTP_FAULTS: list[tuple[str, type[errors.ProviderError], bool, dict[str, Any]]] = [
    ("server_error", UNAVAILABLE, True, {"status": 500, "reason": "server_error"}),
    ("unavailable", UNAVAILABLE, True, {"status": 503, "reason": "server_error"}),
    ("overloaded", UNAVAILABLE, True, {"status": 503, "reason": "server_error"}),
    ("rate_limit", UNAVAILABLE, True, {"status": 429, "reason": "rate_limited"}),
    ("auth", errors.ProviderAuthError, False, {"status": 401}),
    ("bad_request", errors.ProviderBadRequestError, False, {"status": 400}),
]


@pytest.mark.parametrize(("kind", "error", "retryable", "attrs"), HTTP_FAULTS)
async def test_an_http_fault_becomes_the_service_error_after_exactly_one_request(
    vendor_adapter: VendorAdapter,
    kind: Any,
    error: type[errors.ProviderError],
    retryable: bool,
    attrs: dict[str, Any],
) -> None:
    case = vendor_adapter.case
    vendor_adapter.fake.fail(case.vendor, kind)

    with pytest.raises(error) as caught:
        await vendor_adapter.make().compare(PROMPT, NO_OVERRIDES)

    assert type(caught.value) is error
    assert caught.value.retryable is retryable
    assert caught.value.provider is case.provider
    for name, value in {**attrs, "status": case.statuses.get(kind, attrs["status"])}.items():
        assert getattr(caught.value, name) == value
    assert isinstance(caught.value.__cause__, case.status_error)
    assert vendor_adapter.requests() == 1  # the SDK's own retries are off


async def test_a_rate_limit_is_retryable_and_carries_the_retry_after(
    vendor_adapter: VendorAdapter,
) -> None:
    vendor_adapter.fake.fail(vendor_adapter.case.vendor, "rate_limit")

    with pytest.raises(errors.ProviderUnavailableError) as caught:
        await vendor_adapter.make().compare(PROMPT, NO_OVERRIDES)

    assert caught.value.retryable is True
    assert caught.value.reason == "rate_limited"
    assert caught.value.details["reason"] == "rate_limited"
    assert caught.value.retry_after == pytest.approx(2.0)
    assert "Rate limit reached" in caught.value.message
    assert isinstance(caught.value.__cause__, vendor_adapter.case.rate_limit_error)
    assert vendor_adapter.requests() == 1


async def test_a_hanging_upstream_is_a_retryable_timeout_after_one_request(
    vendor_adapter: VendorAdapter,
) -> None:
    vendor_adapter.fake.fail(vendor_adapter.case.vendor, "timeout")
    started = time.monotonic()

    with pytest.raises(errors.ProviderTimeoutError) as caught:
        await vendor_adapter.make().compare(PROMPT, NO_OVERRIDES)

    assert caught.value.retryable is True
    assert time.monotonic() - started < TIMEOUT_SECONDS + 2
    if vendor_adapter.case.timeout_error is not None:
        assert isinstance(caught.value.__cause__, vendor_adapter.case.timeout_error)
    assert vendor_adapter.requests() == 1


async def test_an_unreachable_upstream_is_a_retryable_connection_error(
    vendor_adapter: VendorAdapter,
) -> None:
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = vendor_adapter.case.base_url(vendor_adapter.fake)
    unreachable = base_url.replace(f":{vendor_adapter.fake.port}", f":{port}")

    with pytest.raises(errors.ProviderUnavailableError) as caught:
        await vendor_adapter.make(base_url=unreachable).compare(PROMPT, NO_OVERRIDES)

    assert caught.value.reason == "connection_error"
    assert caught.value.retryable is True


async def test_an_upstream_that_drops_the_connection_is_a_connection_error_not_a_timeout(
    vendor_adapter: VendorAdapter,
) -> None:
    """A vendor that reads the request and closes the connection without a word is
    unreachable, not slow: the breaker and the retry policy tell the two apart. (The SDKs'
    aiohttp transport maps this to `ConnectTimeout`, hence this test.)"""
    dropped = 0

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal dropped
        await reader.read(65536)
        dropped += 1
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    base_url = vendor_adapter.case.base_url(vendor_adapter.fake)
    dropping = base_url.replace(f":{vendor_adapter.fake.port}", f":{port}")
    try:
        with pytest.raises(errors.ProviderUnavailableError) as caught:
            await vendor_adapter.make(base_url=dropping).compare(PROMPT, NO_OVERRIDES)
    finally:
        server.close()
        await server.wait_closed()

    assert caught.value.reason == "connection_error"
    assert caught.value.retryable is True
    assert dropped == 1


@pytest.mark.parametrize("reasks", [0, 1, 2])
@pytest.mark.parametrize("kind", ["malformed", "empty", "schema_violation"])
async def test_a_persistently_invalid_answer_fails_after_one_call_plus_the_reasks(
    vendor_adapter: VendorAdapter,
    kind: Any,
    reasks: int,
) -> None:
    vendor_adapter.fake.fail(vendor_adapter.case.vendor, kind)

    with pytest.raises(errors.InvalidProviderResponseError) as caught:
        await vendor_adapter.make(invalid_response_reasks=reasks).compare(PROMPT, NO_OVERRIDES)

    assert caught.value.retryable is False
    if kind == "schema_violation":
        assert "schema" in caught.value.message
    assert vendor_adapter.requests() == 1 + reasks


async def test_one_schema_violation_is_healed_by_one_fresh_reask_and_both_are_billed(
    vendor_adapter: VendorAdapter,
) -> None:
    fake, vendor = vendor_adapter.fake, vendor_adapter.case.vendor
    provider = vendor_adapter.make(invalid_response_reasks=1)
    single = await provider.compare(PROMPT, NO_OVERRIDES)
    fake.clear()
    fake.fail(vendor, "schema_violation", times=1)

    judgement = await provider.compare(PROMPT, NO_OVERRIDES)

    vendor_adapter.assert_valid(judgement)
    first, second = fake.requests_for(vendor)
    assert (first.fault, second.fault) == ("schema_violation", None)
    assert first.json == second.json  # the same question, asked afresh
    # The vendor bills the rejected answer too, so the usage (and the cost) counts it.
    assert judgement.token_usage.prompt_tokens == 2 * single.token_usage.prompt_tokens
    assert judgement.token_usage.completion_tokens > single.token_usage.completion_tokens / 2


async def test_calls_beyond_max_concurrency_wait_for_a_free_slot(
    vendor_adapter: VendorAdapter,
) -> None:
    fake, vendor = vendor_adapter.fake, vendor_adapter.case.vendor
    provider = vendor_adapter.make(max_concurrency=2)
    fake.fail(vendor, "timeout", times=2)  # the first two requests hang until they time out

    calls = [asyncio.create_task(provider.compare(PROMPT, NO_OVERRIDES)) for _ in range(4)]
    for _ in range(250):  # until both hanging requests arrived, at most 5 s
        if vendor_adapter.requests() >= 2:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(TIMEOUT_SECONDS / 2)
    in_flight = vendor_adapter.requests()
    results = await asyncio.gather(*calls, return_exceptions=True)

    assert in_flight == 2  # the other two waited for a slot
    assert sum(isinstance(r, errors.ProviderTimeoutError) for r in results) == 2
    assert sum(isinstance(r, Judgement) for r in results) == 2
    hung, served = fake.requests_for(vendor)[0], fake.requests_for(vendor)[2]
    assert fake.requests_for(vendor)[1].fault == "timeout"
    assert served.received_at - hung.received_at >= TIMEOUT_SECONDS - 0.1  # a freed slot
    assert vendor_adapter.requests() == 4
