"""`LLMProviderClient.compare` against the service over real HTTP and a real WebSocket:
200 and 202 alike, the WebSocket and its polling fallback, Retry-After, the one
Idempotency-Key per comparison, deadlines and cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dishka import Provider, Scope, provide
from websockets.asyncio.client import connect as real_connect

from common_core.api_models import ComparisonResult
from common_core.client import (
    ComparisonFailedError,
    DeadlineExceededError,
    _waiting,
)
from common_core.enums import QueueStatus
from services.llm_provider_service.models import ComparisonPrompt, Judgement
from services.llm_provider_service.providers.mock import MockProvider
from services.llm_provider_service.settings import Settings
from tests.integration.client.conftest import (
    Serve,
    client_for,
    comparison,
    metric,
    set_mock_fault,
    start_outage,
)


async def test_a_200_comparison_returns_its_result(serve: Serve, http, recorder):
    served = await serve()
    request = comparison(metadata={"essay_a_id": "a1", "essay_b_id": "b1"})

    async with client_for(served.base_url, http) as client:
        result = await client.compare(request)

    assert isinstance(result, ComparisonResult)
    assert result.metadata == {"essay_a_id": "a1", "essay_b_id": "b1"}
    assert [e.status for e in recorder.posts] == [200]
    assert recorder.status_gets == []


async def compare_through_an_outage(served, http, recorder, **options: Any) -> ComparisonResult:
    """Opens the breaker, starts a comparison (202), heals the mock once it is queued."""
    await start_outage(served.base_url)
    async with client_for(served.base_url, http, **options) as client:
        task = asyncio.create_task(client.compare(comparison()))
        await recorder.wait_for_status(202)
        await set_mock_fault(served.base_url, 0.0)
        return await asyncio.wait_for(task, timeout=15)


async def test_an_outage_202_ends_with_the_result_via_the_websocket(serve: Serve, http, recorder):
    served = await serve()

    result = await compare_through_an_outage(served, http, recorder)

    assert [e.status for e in recorder.posts] == [202]
    assert recorder.status_gets == []  # the WebSocket carried the result
    status = await client_for(served.base_url, http).status(result.request_id)
    assert status.status is QueueStatus.COMPLETED
    assert status.result == result


async def test_an_outage_202_ends_with_the_result_by_polling(serve: Serve, http, recorder):
    served = await serve()

    result = await compare_through_an_outage(served, http, recorder, use_websocket=False)

    gets = recorder.status_gets
    assert gets, "polling never asked for the status"
    assert all(e.path == f"/api/v1/status/{result.request_id}" for e in gets)
    assert gets[-1].status == 200


async def test_polling_waits_for_the_202s_retry_after(serve: Serve, http, recorder):
    served = await serve()

    await compare_through_an_outage(served, http, recorder, use_websocket=False)

    queued = next(e for e in recorder.posts if e.status == 202)
    assert queued.response_headers is not None
    assert queued.received_at is not None
    retry_after = float(queued.response_headers["Retry-After"])
    assert retry_after >= 1  # far above poll_interval (0.05 s): the wait is the header's
    first_poll = recorder.status_gets[0]
    assert first_poll.sent_at - queued.received_at >= retry_after - 0.01


class _DropsAfterFirstMessage:
    """A real connection that breaks (TCP abort) after delivering its first message."""

    def __init__(self, socket: Any) -> None:
        self._socket = socket

    async def __aiter__(self) -> AsyncIterator[Any]:
        yield await self._socket.recv()
        self._socket.transport.abort()
        async for message in self._socket:
            yield message


def failing_connect(how: str, served, attempts: list[str]):
    """A stand-in for `websockets` connect that fails in the way `how` names, for real."""

    @contextlib.asynccontextmanager
    async def connect(url: str, **options: Any) -> AsyncIterator[Any]:
        attempts.append(url)
        if how == "handshake_rejected":  # a route that does not exist: HTTP 404
            url = url.replace("/ws/status/", "/ws/nowhere/")
        elif how == "connection_refused":  # a port nothing listens on
            url = url.replace(f":{served.port}/", ":1/")
        async with real_connect(url, **options) as socket:
            yield _DropsAfterFirstMessage(socket) if how == "dropped" else socket

    return connect


@pytest.mark.parametrize("how", ["handshake_rejected", "connection_refused", "dropped"])
async def test_a_websocket_that_fails_falls_back_to_polling(
    serve: Serve,
    http,
    recorder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    how: str,
):
    caplog.set_level(logging.INFO, logger=_waiting.__name__)
    served = await serve()
    attempts: list[str] = []
    monkeypatch.setattr(_waiting, "ws_connect", failing_connect(how, served, attempts))

    result = await compare_through_an_outage(served, http, recorder)

    assert attempts == [f"{served.ws_url}/api/v1/ws/status/{result.request_id}"]
    assert recorder.status_gets, "no fallback to polling"
    assert recorder.status_gets[-1].status == 200
    assert any("unusable" in r.getMessage() for r in caplog.records if r.name == _waiting.__name__)


class SlowFirstCallDeps(Provider):
    """The mock provider, whose first call takes its full latency and later calls none;
    counts calls started and judgements returned."""

    scope = Scope.APP

    def __init__(self) -> None:
        super().__init__()
        self.started = 0
        self.answered = 0

    @provide
    def mock_provider(self, settings: Settings) -> MockProvider:
        deps = self

        async def sleep(seconds: float) -> None:
            if deps.started == 1:
                await asyncio.sleep(seconds)

        class Counting(MockProvider):
            async def compare(self, prompt: ComparisonPrompt, overrides: Any) -> Judgement:
                deps.started += 1
                judgement = await super().compare(prompt, overrides)
                deps.answered += 1
                return judgement

        return Counting(settings.mock, random.Random(1), sleep)


async def test_a_timed_out_post_is_retried_with_the_same_key_and_judged_once(
    serve: Serve, http, recorder
):
    deps = SlowFirstCallDeps()
    served = await serve(deps, mock_latency_ms=1500.0)

    async with client_for(served.base_url, http, timeout=0.3) as client:
        result = await client.compare(comparison())

    posts = recorder.posts
    assert len(posts) >= 2
    assert posts[0].status is None
    keys = {e.headers["Idempotency-Key"] for e in posts}
    assert len(keys) == 1
    assert None not in keys
    assert posts[-1].status == 200
    # One provider call: the service finished the timed-out try, and the retry replayed it.
    assert deps.started == 1
    assert deps.answered == 1
    success = await metric(
        served.base_url, "llm_provider_provider_calls_total", provider="mock", outcome="success"
    )
    assert success == 1.0
    assert result.provider_request_id is not None


async def test_a_deadline_raises_with_the_queue_id_and_leaves_the_request_queued(
    serve: Serve, http
):
    served = await serve(worker_enabled=False)

    async with client_for(served.base_url, http) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError) as raised:
            await client.compare(comparison(processing_mode="async"), deadline=0.5)
        elapsed = time.monotonic() - started
        assert raised.value.queue_id is not None
        status = await client.status(raised.value.queue_id)
        with pytest.raises(DeadlineExceededError) as resumed:
            await client.compare(
                comparison(processing_mode="async"),
                idempotency_key=raised.value.idempotency_key,
                deadline=0.2,
            )

    assert 0.5 <= elapsed < 2.0
    assert status.status is QueueStatus.QUEUED  # not cancelled: its result will still come
    assert raised.value.idempotency_key
    assert resumed.value.queue_id == raised.value.queue_id  # the same key found it again


async def test_a_request_cancelled_while_compare_waits_raises_comparison_failed(
    serve: Serve, http, recorder
):
    served = await serve(worker_enabled=False)

    async with client_for(served.base_url, http) as client:
        task = asyncio.create_task(client.compare(comparison(processing_mode="async")))
        queued = await recorder.wait_for_status(202)
        queue_id = queued.response_headers["Location"].rsplit("/", 1)[1]
        cancelled = await client.cancel(queue_id)
        with pytest.raises(ComparisonFailedError) as raised:
            await asyncio.wait_for(task, timeout=10)

    assert cancelled.status is QueueStatus.CANCELLED
    assert raised.value.final_status is QueueStatus.CANCELLED
    assert raised.value.code == "REQUEST_CANCELLED"
    assert str(raised.value.queue_id) == queue_id
