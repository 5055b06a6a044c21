"""Closed-loop load on one target: `concurrency` callers sending `requests` requests between
them, each timed from send to a whole, successful answer."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from tqdm import tqdm

from services.llm_provider_service.providers.openai_request import (
    DEFAULT_MAX_TOKENS,
    json_schema_format,
)

Call = Callable[[], Awaitable[None]]
SYSTEM_PROMPT = "You are an experienced examiner comparing two student essays."
ESSAY_A = "A careful argument with evidence. " * 40
ESSAY_B = "A lively story without evidence. " * 40
USER_PROMPT = f"Which essay argues its thesis better?\n\nEssay A:\n{ESSAY_A}\n\nEssay B:\n{ESSAY_B}"
SERVICE_BODY: dict[str, Any] = {
    "user_prompt": USER_PROMPT,
    "processing_mode": "immediate",
    "llm_config_overrides": {
        "provider_override": "openai",
        "system_prompt_override": SYSTEM_PROMPT,
    },
}


@dataclass
class LevelResult:
    """One target at one concurrency: latencies of the answered requests, failures by kind."""

    concurrency: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


class ServiceRefusedError(Exception):
    """The service answered something other than 200."""


def sdk_call(client: openai.AsyncOpenAI, model: str) -> Call:
    """What the service's OpenAI adapter sends, sent with the same SDK call."""

    async def call() -> None:
        completion = await client.chat.completions.create(
            model=model,
            messages=[
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": USER_PROMPT},
            ],
            response_format=json_schema_format(),
            max_tokens=DEFAULT_MAX_TOKENS,
        )
        if not completion.choices[0].message.content:
            raise ValueError("empty completion")

    return call


def service_call(client: httpx2.AsyncClient) -> Call:
    """One comparison through the service, answered at once (never queued)."""

    async def call() -> None:
        response = await client.post("/api/v1/comparison", json=SERVICE_BODY)
        if response.status_code != 200:
            raise ServiceRefusedError(f"HTTP {response.status_code}")

    return call


def sdk_client(base_url: str, connections: int, api_key: str = "bench-key") -> openai.AsyncOpenAI:
    """The SDK with every caller's connection kept alive (its default keeps 100), so that no
    level measures reconnecting. The SDK speaks httpx2, openai's fork of httpx."""
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,
        timeout=120,
        http_client=openai.DefaultAsyncHttpxClient(limits=limits, timeout=120),
    )


def http_client(base_url: str, connections: int) -> httpx2.AsyncClient:
    """The same HTTP client the SDK calls of the other targets send through (httpx2), so every
    target is driven alike. With httpx 0.29 here, the load generator itself capped the
    service at about 110 req/s at c=50 (the service half idle, p95 over a second) where
    httpx2 drove it at about 200 req/s."""
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx2.AsyncClient(base_url=base_url, limits=limits, timeout=120)


async def run_level(call: Call, concurrency: int, requests: int, bar: tqdm[Any]) -> LevelResult:
    """`requests` calls from `concurrency` callers at once; every failure is counted by its
    exception's name, never retried."""
    result = LevelResult(concurrency, 0.0)
    remaining = iter(range(requests))

    async def caller() -> None:
        for _ in remaining:
            started = time.perf_counter()
            try:
                await call()
            except Exception as exc:  # counted and reported: a benchmark must not stop
                name = str(exc) if isinstance(exc, ServiceRefusedError) else type(exc).__name__
                result.errors[name] = result.errors.get(name, 0) + 1
            else:
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
            bar.update(1)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


async def warm_up(call: Call, requests: int = 20) -> None:
    """Connections opened and code paths run once before anything is timed. Failures are
    ignored here: the levels count them, so a target that cannot answer is reported, not
    the end of the run."""
    for _ in range(requests):
        with contextlib.suppress(Exception):
            await call()
