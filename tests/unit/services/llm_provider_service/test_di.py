"""The composition root: a container per environment, and a lifecycle that stops the worker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from dishka.exceptions import NoFactoryError

from common_core.enums import EnvironmentType, LLMProviderType
from services.llm_provider_service.app import create_app
from services.llm_provider_service.batch.lane_queue import BatchQueue
from services.llm_provider_service.cache.memory import InMemoryResponseCache, NoResponseCache
from services.llm_provider_service.di import ENVIRONMENT_DEPS, bindings, make_container
from services.llm_provider_service.di.core import SECTIONS
from services.llm_provider_service.errors import ProviderNotConfiguredError
from services.llm_provider_service.idempotency.guard import IdempotencyGuard
from services.llm_provider_service.orchestrator import ComparisonOrchestrator
from services.llm_provider_service.protocols import (
    EventPublisher,
    FaultInjection,
    IdempotencyStore,
    RequestQueue,
    ResponseCache,
)
from services.llm_provider_service.provider_call import ProviderCall
from services.llm_provider_service.provider_registry import ProviderRegistry
from services.llm_provider_service.queue.laned import LanedRequestQueue
from services.llm_provider_service.queue.memory import InMemoryRequestQueue
from services.llm_provider_service.redis.cache import RedisResponseCache
from services.llm_provider_service.redis.idempotency import RedisIdempotencyStore
from services.llm_provider_service.redis.queue import RedisRequestQueue
from services.llm_provider_service.settings import Settings
from services.llm_provider_service.worker import QueueWorker
from tests.support.callers import DEPLOYED_CALLERS
from tests.support.redis_server import RedisServer

SettingsFactory = Callable[..., Settings]
DEPLOYED_EXTRAS: dict[str, Any] = {"anthropic_api_key": "sk-test", "callers": DEPLOYED_CALLERS}
EMBEDDED = [EnvironmentType.DEVELOPMENT, EnvironmentType.TESTING]
DEPLOYED = [EnvironmentType.STAGING, EnvironmentType.PRODUCTION]


async def _assert_lanes(container: Any, lane_type: type[Any]) -> None:
    """The `RequestQueue` is both lanes of `lane_type`; the engine's `BatchQueue` is the
    very batch lane behind it."""
    queue = await container.get(RequestQueue)
    batch = await container.get(BatchQueue)
    assert isinstance(queue, LanedRequestQueue)
    assert isinstance(queue.realtime, lane_type)
    assert isinstance(queue.batch, lane_type)
    assert queue.batch is batch.queue
    assert queue.realtime is not queue.batch


def test_every_environment_has_bindings():
    assert set(ENVIRONMENT_DEPS) == set(EnvironmentType)
    assert list(EnvironmentType) == EMBEDDED + DEPLOYED


@pytest.mark.parametrize("environment", EMBEDDED)
async def test_embedded_container_resolves_the_whole_graph(
    make_settings: SettingsFactory, environment: EnvironmentType
):
    container = make_container(make_settings(environment=environment.value))
    try:
        for dependency in (
            ComparisonOrchestrator,
            QueueWorker,
            RequestQueue,
            EventPublisher,
            ProviderRegistry,
            FaultInjection,
        ):
            assert await container.get(dependency) is not None, dependency
        registry = await container.get(ProviderRegistry)
        assert registry.is_available(LLMProviderType.MOCK)
        assert registry.resolve(None) is LLMProviderType.MOCK
        # The fault injector is the very mock the registry calls, or drills would do nothing.
        assert await container.get(FaultInjection) is registry.get(LLMProviderType.MOCK)
    finally:
        await container.close()


@pytest.mark.parametrize("environment", DEPLOYED)
async def test_deployed_container_is_redis_without_mock_cache_or_fault_injection(
    make_settings: SettingsFactory, environment: EnvironmentType, redis_server: RedisServer
):
    settings = make_settings(
        environment=environment.value,
        anthropic_api_key="sk-test",
        redis_url=redis_server.url,
        callers=DEPLOYED_CALLERS,
    )
    # (built at all: the deployed settings themselves are accepted)
    container = make_container(settings)
    try:
        for dependency in (ComparisonOrchestrator, QueueWorker, IdempotencyGuard):
            assert await container.get(dependency) is not None, dependency
        await _assert_lanes(container, RedisRequestQueue)
        assert isinstance(await container.get(IdempotencyStore), RedisIdempotencyStore)
        # Staging and production never bind a cache that could serve a judgement twice.
        assert isinstance(await container.get(ResponseCache), NoResponseCache)
        registry = await container.get(ProviderRegistry)
        assert await container.get(EventPublisher) is not None
        with pytest.raises(NoFactoryError):
            await container.get(FaultInjection)
        assert not registry.is_available(LLMProviderType.MOCK)
        with pytest.raises(ProviderNotConfiguredError):
            registry.get(LLMProviderType.MOCK)
    finally:
        await container.close()


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="testing-in-memory"),
        pytest.param({"enable_queue_persistence": True}, id="testing-redis"),
        pytest.param({"environment": "staging", **DEPLOYED_EXTRAS}, id="staging"),
        pytest.param({"environment": "production", **DEPLOYED_EXTRAS}, id="production"),
    ],
)
async def test_every_binding_resolves_and_each_section_is_the_settings_own(
    make_settings: SettingsFactory, redis_server: RedisServer, overrides: dict[str, Any]
):
    settings = make_settings(redis_url=redis_server.url, **overrides)
    container = make_container(settings)
    try:
        for name, section in SECTIONS.items():
            assert await container.get(section) is getattr(settings, name), name
        for deps in bindings(settings):
            for factory in deps.factories:
                await container.get(factory.provides.type_hint)  # raises if it cannot be built
    finally:
        await container.close()


async def test_persistence_switches_the_embedded_default_to_redis(
    make_settings: SettingsFactory, redis_server: RedisServer
):
    settings = make_settings(enable_queue_persistence=True, redis_url=redis_server.url)
    container = make_container(settings)
    try:
        await _assert_lanes(container, RedisRequestQueue)
        assert isinstance(await container.get(ResponseCache), RedisResponseCache)
    finally:
        await container.close()
    embedded = make_container(make_settings())
    try:
        await _assert_lanes(embedded, InMemoryRequestQueue)
        assert isinstance(await embedded.get(ResponseCache), InMemoryResponseCache)
    finally:
        await embedded.close()


@pytest.mark.parametrize("environment", DEPLOYED)
async def test_use_mock_llm_never_reaches_the_mock_when_deployed(
    make_settings: SettingsFactory, environment: EnvironmentType
):
    accepted = make_settings(
        environment=environment.value, anthropic_api_key="sk-test", callers=DEPLOYED_CALLERS
    )
    # Settings refuse USE_MOCK_LLM when deployed; built around that refusal, the registry
    # must still never answer from the mock.
    mock = accepted.providers.model_copy(update={"use_mock_llm": True})
    settings = accepted.model_copy(update={"providers": mock})
    container = make_container(settings)
    try:
        registry = await container.get(ProviderRegistry)
        for provider in LLMProviderType:
            assert not registry.is_available(provider), provider
    finally:
        await container.close()


async def test_the_orchestrator_and_the_worker_share_one_provider_call(settings: Settings):
    # One ProviderCall per process: its breakers, in-flight registry and unpriced-model log
    # are the ones both the request path and the worker see.
    container = make_container(settings)
    try:
        calls = await container.get(ProviderCall)
        orchestrator = await container.get(ComparisonOrchestrator)
        worker = await container.get(QueueWorker)
        assert orchestrator._calls is calls
        assert worker._calls is calls
    finally:
        await container.close()


def _worker_tasks() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == "queue-worker"]


async def test_leaving_the_app_lifecycle_stops_the_worker(settings: Settings):
    app = create_app(settings)

    async with app.test_app():
        running = _worker_tasks()
        assert len(running) == 1
        assert not running[0].done()

    assert running[0].done()
    assert not running[0].cancelled()
    assert running[0].exception() is None
    assert [task for task in _worker_tasks() if not task.done()] == []


async def test_no_worker_runs_when_disabled(make_settings: SettingsFactory):
    app = create_app(make_settings(worker_enabled=False))

    async with app.test_app():
        assert _worker_tasks() == []
