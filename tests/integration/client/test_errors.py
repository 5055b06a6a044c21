"""The service's answers become typed errors, retried only when a retry can help."""

from __future__ import annotations

import itertools
import uuid

import pytest

from common_core.client import (
    AuthenticationError,
    IdempotencyKeyReusedError,
    ProviderFailedError,
    RequestRejectedError,
    ServiceUnavailableError,
)
from tests.integration.client.conftest import (
    Serve,
    client_for,
    comparison,
    set_mock_fault,
    start_outage,
)
from tests.support.callers import policy


async def test_a_validation_error_is_request_rejected_with_its_details(
    serve: Serve, http, recorder
):
    served = await serve()
    correlation_id = uuid.uuid4()
    too_long = comparison(ttl_seconds=10**7, correlation_id=correlation_id)

    async with client_for(served.base_url, http, seed=3) as client:
        with pytest.raises(RequestRejectedError) as raised:
            await client.compare(too_long)

    error = raised.value
    assert (error.code, error.status) == ("VALIDATION_ERROR", 400)
    assert error.details == {"field": "ttl_seconds", "max": 86400}
    assert error.correlation_id == correlation_id
    assert recorder.posts[0].headers["X-Correlation-ID"] == str(correlation_id)
    assert len(recorder.posts) == 1  # not retried


async def test_the_same_key_replays_and_refuses_another_body(serve: Serve, http, recorder):
    served = await serve()
    key = f"cj-comparison-{uuid.uuid4()}"

    async with client_for(served.base_url, http, seed=3) as client:
        first = await client.compare(comparison(), idempotency_key=key)
        again = await client.compare(comparison(), idempotency_key=key)
        with pytest.raises(IdempotencyKeyReusedError) as raised:
            await client.compare(comparison(essay_b="Another essay."), idempotency_key=key)

    assert again == first
    assert recorder.posts[1].response_headers["Idempotent-Replayed"] == "true"
    assert (raised.value.code, raised.value.status) == ("IDEMPOTENCY_KEY_REUSED", 409)
    assert len(recorder.posts) == 3


async def test_an_invalid_provider_answer_is_provider_failed_and_not_retried(
    serve: Serve, http, recorder
):
    served = await serve()
    await set_mock_fault(served.base_url, 1.0, "invalid_response")

    async with client_for(served.base_url, http, seed=3) as client:
        with pytest.raises(ProviderFailedError) as raised:
            await client.compare(comparison(processing_mode="immediate"))

    assert (raised.value.code, raised.value.status) == ("INVALID_PROVIDER_RESPONSE", 502)
    assert len(recorder.posts) == 1


async def test_an_open_breaker_in_immediate_mode_is_unavailable_after_the_retries(
    serve: Serve, http, recorder
):
    served = await serve()
    await start_outage(served.base_url)

    async with client_for(served.base_url, http, seed=3, retries=1) as client:
        with pytest.raises(ServiceUnavailableError) as raised:
            await client.compare(comparison(processing_mode="immediate"))

    assert (raised.value.code, raised.value.status) == ("PROVIDER_UNAVAILABLE", 503)
    assert raised.value.retry_after is not None
    assert raised.value.retry_after >= 1
    posts = recorder.posts
    assert [e.status for e in posts] == [503, 503]  # the first try and one retry
    assert len({e.headers["Idempotency-Key"] for e in posts}) == 1
    for before, after in itertools.pairwise(posts):  # each retry after Retry-After
        assert before.response_headers is not None
        assert before.received_at is not None
        wait = float(before.response_headers["Retry-After"])
        assert after.sent_at - before.received_at >= wait - 0.01


async def test_a_service_with_callers_answers_the_clients_key_and_refuses_others(
    serve: Serve, http, recorder
):
    served = await serve(callers={"cj_assessment": policy("cj-key")})

    async with client_for(served.base_url, http, seed=3, api_key="cj-key") as client:
        result = await client.compare(comparison())
    async with client_for(served.base_url, http, seed=3, api_key="not-a-key") as stranger:
        with pytest.raises(AuthenticationError) as refused:
            await stranger.compare(comparison())

    assert result.winner is not None
    assert (refused.value.code, refused.value.status) == ("UNAUTHORIZED", 401)
    assert refused.value.details == {"reason": "bad_key"}
    first, second = recorder.posts
    assert first.headers["Authorization"] == "Bearer cj-key"
    assert (first.status, second.status) == (200, 401)  # a wrong key is not retried
