"""Fixtures shared by every test: settings for the embedded default, an app and its client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol

from services.llm_provider_service.app import create_app
from services.llm_provider_service.settings import Settings, load_settings
from tests.support.redis_server import RedisClusterServer, RedisServer

SettingsFactory = Callable[..., Settings]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the developer's real keys or settings from the environment."""
    import os

    for name in list(os.environ):
        if name.startswith("LLM_PROVIDER_SERVICE_") or name in {
            "ENVIRONMENT",
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "GOOGLE_API_KEY",
            "GEMINI_API_KEY",
            "OPENROUTER_API_KEY",
        }:
            monkeypatch.delenv(name)


@pytest.fixture
def make_settings() -> SettingsFactory:
    """Settings for a fast, reproducible embedded default; keyword arguments (flat names as
    in the environment, `queue_max_size=3`, or sections) override. Raises
    `ConfigurationError` for contradicting settings, as `load_settings` does."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "testing",
            "mock_latency_ms": 0.0,
            "mock_latency_jitter_ms": 0.0,
            "mock_seed": 1234,
            "queue_poll_interval_seconds": 0.05,
            "queue_retry_base_seconds": 0.05,
            "queue_retry_max_seconds": 0.2,
            "circuit_breaker_failure_threshold": 3,
            "circuit_breaker_reset_timeout_seconds": 0.3,
            "worker_shutdown_grace_seconds": 1.0,
        }
        values.update(overrides)
        return load_settings(**values)

    return factory


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Quart]:
    """The app with its lifecycle running (worker started, container closed afterwards)."""
    application = create_app(settings)
    async with application.test_app() as test_app:
        yield test_app.app  # type: ignore[attr-defined]


@pytest.fixture
def client(app: Quart) -> TestClientProtocol:
    return app.test_client()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server (AOF on) for the whole session; tests may kill and restart it,
    and must leave it running. Tests isolate themselves with their own key prefix."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServer]:
    """A private Redis Cluster of three masters (AOF on, no replicas) for the whole session,
    started on first use; tests may kill and restart a master, and must leave it running.
    Tests isolate themselves with their own key prefix."""
    cluster = RedisClusterServer(tmp_path_factory.mktemp("redis-cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        for node in cluster.nodes:
            node.kill()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private Tansu broker (Kafka-compatible, in-memory) for the whole session, as a
    `tests.support.kafka_broker.TansuBroker`; tests may stop and restart it, and must leave it
    running. Tests isolate themselves with their own topic names."""
    from tests.support.kafka_broker import TansuBroker

    broker = TansuBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
