"""Fixtures for the client tests: the service over real HTTP (`served_app`), an httpx client
whose transport records every exchange, and outage drills."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from dishka import Provider

from common_core.api_models import ComparisonRequest
from common_core.client import LLMProviderClient
from services.llm_provider_service.settings import Settings
from tests.support.served_app import ServedApp, served_app

Serve = Callable[..., Awaitable[ServedApp]]


@dataclass(frozen=True)
class Exchange:
    """One request the client sent and what came back (None: no answer)."""

    method: str
    path: str
    headers: httpx.Headers
    sent_at: float
    status: int | None
    response_headers: httpx.Headers | None
    received_at: float | None


class RecordingTransport(httpx.AsyncBaseTransport):
    """A real HTTP transport that records each exchange (time.monotonic) and how many
    requests were in flight at most."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.exchanges: list[Exchange] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent_at = time.monotonic()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        response: httpx.Response | None = None
        try:
            response = await self._inner.handle_async_request(request)
            await response.aread()
            return response
        finally:
            self.in_flight -= 1
            self.exchanges.append(
                Exchange(
                    request.method,
                    request.url.path,
                    request.headers,
                    sent_at,
                    response.status_code if response is not None else None,
                    response.headers if response is not None else None,
                    time.monotonic() if response is not None else None,
                )
            )

    async def aclose(self) -> None:
        await self._inner.aclose()

    def of(self, method: str, path_prefix: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == method and e.path.startswith(path_prefix)]

    @property
    def posts(self) -> list[Exchange]:
        return self.of("POST", "/api/v1/comparison")

    @property
    def status_gets(self) -> list[Exchange]:
        return self.of("GET", "/api/v1/status/")

    async def wait_for_status(self, status: int, within: float = 10.0) -> Exchange:
        """The first exchange answered with `status`, once there is one."""
        async with asyncio.timeout(within):
            while True:
                for exchange in self.exchanges:
                    if exchange.status == status:
                        return exchange
                await asyncio.sleep(0.01)


@pytest.fixture
async def serve(make_settings: Callable[..., Settings]) -> AsyncIterator[Serve]:
    """`await serve(*overrides, **settings)`: the service over real HTTP until the test ends."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(*overrides: Provider, **values: Any) -> ServedApp:
            return await stack.enter_async_context(served_app(make_settings(**values), *overrides))

        yield start


@pytest.fixture
async def recorder() -> AsyncIterator[RecordingTransport]:
    transport = RecordingTransport()
    yield transport
    await transport.aclose()


@pytest.fixture
async def http(recorder: RecordingTransport) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client over the recording transport, to inject into `LLMProviderClient`."""
    async with httpx.AsyncClient(transport=recorder) as client:
        yield client


def client_for(base_url: str, http: Any, *, seed: int = 7, **options: Any) -> LLMProviderClient:
    """A client with fast polls and a seeded jitter, on the recorded `http` client."""
    values: dict[str, Any] = {"poll_interval": 0.05, "max_poll_interval": 0.2, "timeout": 5.0}
    values.update(options)
    return LLMProviderClient(base_url, http=http, rng=random.Random(seed), **values)


def comparison(**fields: Any) -> ComparisonRequest:
    """A valid request; keyword arguments set (or override) fields."""
    values: dict[str, Any] = {
        "user_prompt": "Which essay is better argued?",
        "essay_a": "A careful argument, with evidence.",
        "essay_b": "A loud assertion, without evidence.",
    }
    values.update(fields)
    return ComparisonRequest.model_validate(values)


async def set_mock_fault(base_url: str, error_rate: float, error_kind: str = "server_error"):
    async with httpx.AsyncClient(base_url=base_url) as raw:
        response = await raw.post(
            "/api/v1/dev/mock-fault", json={"error_rate": error_rate, "error_kind": error_kind}
        )
        assert response.status_code == 200, response.text


async def start_outage(base_url: str) -> None:
    """Make the mock fail and open its breaker (3 failures with the test settings)."""
    await set_mock_fault(base_url, 1.0)
    body = comparison(processing_mode="immediate").model_dump(mode="json", exclude_unset=True)
    async with httpx.AsyncClient(base_url=base_url) as raw:
        for _ in range(3):
            response = await raw.post("/api/v1/comparison", json=body)
            assert response.status_code == 503, response.text


async def metric(base_url: str, name: str, **labels: str) -> float:
    """The value of one sample of `GET /metrics` (0.0 when absent)."""
    async with httpx.AsyncClient(base_url=base_url) as raw:
        text = (await raw.get("/metrics")).text
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
