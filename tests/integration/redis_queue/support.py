"""Parts for the queue requirement tests: a real `QueueWorker` wired by the service's own
container on the session redis-server, with fakes only at the edges (provider, publisher,
breaker clock), and pollers that wait on a condition with a deadline instead of sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from dishka import AsyncContainer, Provider, Scope, provide
from redis.asyncio import Redis

from common_core.api_models import LLMConfigOverrides
from common_core.enums import CircuitBreakerState, LLMProviderType, QueueStatus
from services.llm_provider_service.breaker import CircuitBreakers, ProviderCircuitBreaker
from services.llm_provider_service.di import make_container
from services.llm_provider_service.errors import ProviderUnavailableError
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.models import (
    ComparisonPrompt,
    Judgement,
    Lease,
    QueueRecord,
    ReapReport,
)
from services.llm_provider_service.protocols import EventPublisher, RequestQueue
from services.llm_provider_service.provider_registry import ProviderRegistry
from services.llm_provider_service.redis.keys import RedisKeys
from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.relay import ResultRelay
from services.llm_provider_service.settings import QueueSettings, Settings
from services.llm_provider_service.worker import QueueWorker
from tests.fakes import RecordingPublisher, ScriptedProvider
from tests.support.redis_queue import QueueBuilder

MOCK = LLMProviderType.MOCK
T = TypeVar("T")


def outage(message: str = "upstream 503") -> ProviderUnavailableError:
    return ProviderUnavailableError(MOCK, message, reason="server_error", status=503)


@dataclass
class TimedProvider(ScriptedProvider):
    """A `ScriptedProvider` whose every call takes `delay` seconds and records when it began;
    a prompt containing `crash_on` makes the call raise an unexpected exception."""

    delay: float = 0.0
    crash_on: str | None = None
    started: list[float] = field(default_factory=list)

    async def compare(self, prompt: ComparisonPrompt, overrides: LLMConfigOverrides) -> Judgement:
        self.started.append(time.monotonic())
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.crash_on is not None and self.crash_on in prompt.user_prompt:
            self.calls.append((prompt, overrides))
            raise RuntimeError("this request crashes whoever runs it")
        return await super().compare(prompt, overrides)


@dataclass
class FakeMonotonic:
    """The breakers' clock: an open breaker's period ends only when a test says so."""

    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


class ObservedQueue(RedisRequestQueue):
    """`RedisRequestQueue` that counts the worker's passes (one reap each) and keeps every
    lease it handed out, so a test can wait for passes instead of sleeping."""

    def __init__(self, redis: Redis, builder: QueueBuilder, config: QueueSettings) -> None:
        super().__init__(redis, RedisKeys(builder.prefix), config, time_offset_ms=builder.time)
        self.reaps = 0
        self.claimed: list[Lease] = []

    async def reap(self) -> ReapReport:
        report = await super().reap()
        self.reaps += 1
        return report

    async def claim(self, provider: LLMProviderType, *, limit: int, owner: str) -> list[Lease]:
        leases = await super().claim(provider, limit=limit, owner=owner)
        self.claimed.extend(leases)
        return leases


class RigDeps(Provider):
    """Replaces the container's queue, provider registry, publisher and breakers."""

    scope = Scope.APP

    def __init__(
        self,
        queue: RequestQueue,
        provider: TimedProvider,
        publisher: RecordingPublisher,
        breakers: CircuitBreakers,
    ) -> None:
        super().__init__()
        self._queue = queue
        self._provider = provider
        self._publisher = publisher
        self._breakers = breakers

    @provide
    def queue(self) -> RequestQueue:
        return self._queue

    @provide
    def registry(self, settings: Settings) -> ProviderRegistry:
        return ProviderRegistry({MOCK: self._provider}, settings)

    @provide
    def publisher(self) -> EventPublisher:
        return self._publisher

    @provide
    def breakers(self) -> CircuitBreakers:
        return self._breakers


@dataclass
class Rig:
    """One worker process's parts: the worker, its queue instance, fakes and metrics."""

    worker: QueueWorker
    queue: ObservedQueue
    provider: TimedProvider
    publisher: RecordingPublisher
    breakers: CircuitBreakers
    monotonic: FakeMonotonic
    metrics: ServiceMetrics
    settings: Settings
    builder: QueueBuilder
    relay: ResultRelay

    async def flush_results(self) -> None:
        """Let the relay announce every ended request and deliver what it owes."""
        while await self.relay.run_once():
            pass

    def sample(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    async def open_breaker(self) -> None:
        breaker = self.breakers[MOCK]

        async def failing() -> None:
            raise outage("tripping the breaker")

        while breaker.state is CircuitBreakerState.CLOSED:
            with contextlib.suppress(ProviderUnavailableError):
                await breaker.call(failing)
        assert breaker.state is CircuitBreakerState.OPEN

    def end_open_period(self) -> None:
        self.monotonic.now += self.settings.providers.circuit_breaker_reset_timeout_seconds + 1

    async def passes(self, count: int, within: float = 5.0) -> None:
        """Wait until the worker has made `count` more passes (each begins with a reap)."""
        target = self.queue.reaps + count

        async def made() -> bool:
            return self.queue.reaps >= target

        await wait_until(made, within, f"{count} worker passes")


async def build_rig(
    settings: Settings, redis: Redis, builder: QueueBuilder, stack: contextlib.AsyncExitStack
) -> Rig:
    """A worker wired by `make_container`, on `builder`'s keys and time; closed by `stack`."""
    provider = TimedProvider()
    publisher = RecordingPublisher()
    monotonic = FakeMonotonic()
    breakers = CircuitBreakers(
        {
            p: ProviderCircuitBreaker(
                p,
                failure_threshold=settings.providers.circuit_breaker_failure_threshold,
                reset_timeout_seconds=settings.providers.circuit_breaker_reset_timeout_seconds,
                monotonic=monotonic,
            )
            for p in LLMProviderType
        }
    )
    queue = ObservedQueue(redis, builder, settings.queue)
    container: AsyncContainer = make_container(
        settings, RigDeps(queue, provider, publisher, breakers)
    )
    stack.push_async_callback(container.close)
    return Rig(
        worker=await container.get(QueueWorker),
        queue=queue,
        provider=provider,
        publisher=publisher,
        breakers=breakers,
        monotonic=monotonic,
        metrics=await container.get(ServiceMetrics),
        settings=settings,
        builder=builder,
        relay=await container.get(ResultRelay),
    )


@contextlib.asynccontextmanager
async def running(*workers: QueueWorker) -> AsyncIterator[None]:
    """Run the workers' loops for the duration of the block, then stop them gracefully."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stop)) for worker in workers]
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)


async def wait_until(check: Callable[[], Awaitable[Any]], within: float, what: str) -> Any:
    """Poll `check` until it returns something truthy; fail after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if value := await check():
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.01)


async def wait_for_status(
    queue: RequestQueue, queue_id: UUID, *statuses: QueueStatus, within: float = 5.0
) -> QueueRecord:
    async def reached() -> QueueRecord | None:
        record = await queue.get(queue_id)
        return record if record is not None and record.status in statuses else None

    record = await wait_until(reached, within, f"{queue_id} {'/'.join(statuses)}")
    assert isinstance(record, QueueRecord)
    return record


async def record_of(queue: RequestQueue, queue_id: UUID) -> QueueRecord:
    record = await queue.get(queue_id)
    assert record is not None, f"{queue_id} has no record"
    return record
