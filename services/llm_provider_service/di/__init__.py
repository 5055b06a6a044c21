"""The composition root: which concrete adapter serves each port, per environment.

`ENVIRONMENT_DEPS` is the one table that chooses bindings per environment (`vendors.py`),
`queue_deps` the queue and outbox by ENABLE_QUEUE_PERSISTENCE (`stores.py`), `event_deps` the
publisher by KAFKA_ENABLED (`events.py`); `make_container` applies all three on top of the
settings sections and the bindings every environment shares (`core.py`).
Only this package and `app.py` import concrete adapters.
"""

from dishka import AsyncContainer, Provider, make_async_container

from common_core.enums import EnvironmentType
from services.llm_provider_service.di.batch import BatchDeps
from services.llm_provider_service.di.core import CoreDeps, SettingsDeps
from services.llm_provider_service.di.events import KafkaEventDeps, LogEventDeps
from services.llm_provider_service.di.stores import InMemoryQueueDeps, RedisQueueDeps
from services.llm_provider_service.di.vendors import (
    DeployedDeps,
    DevelopmentDeps,
    TestingDeps,
    VendorDeps,
)
from services.llm_provider_service.queue.durability import DurabilityWatch, check_durability
from services.llm_provider_service.redis.client import RedisClient, check_cluster_mode
from services.llm_provider_service.settings import Settings

__all__ = [
    "ENVIRONMENT_DEPS",
    "BatchDeps",
    "CoreDeps",
    "DeployedDeps",
    "DevelopmentDeps",
    "InMemoryQueueDeps",
    "KafkaEventDeps",
    "LogEventDeps",
    "RedisQueueDeps",
    "SettingsDeps",
    "TestingDeps",
    "VendorDeps",
    "bindings",
    "check_dependencies",
    "event_deps",
    "known_dependencies",
    "make_container",
    "queue_deps",
]

ENVIRONMENT_DEPS: dict[EnvironmentType, type[Provider]] = {
    EnvironmentType.DEVELOPMENT: DevelopmentDeps,
    EnvironmentType.TESTING: TestingDeps,
    EnvironmentType.STAGING: DeployedDeps,
    EnvironmentType.PRODUCTION: DeployedDeps,
}


def queue_deps(settings: Settings) -> Provider:
    """Redis when persistence is on (always in staging and production), else in memory."""
    return RedisQueueDeps() if settings.queue_persistence else InMemoryQueueDeps()


def event_deps(settings: Settings) -> Provider:
    """Kafka when KAFKA_ENABLED (always in staging and production), else the log."""
    return KafkaEventDeps() if settings.uses_kafka else LogEventDeps()


def bindings(settings: Settings) -> list[Provider]:
    """Every dishka provider the container for `settings` is made of, later ones winning."""
    return [
        SettingsDeps(),
        CoreDeps(),
        BatchDeps(),
        VendorDeps(),
        queue_deps(settings),
        event_deps(settings),
        ENVIRONMENT_DEPS[settings.environment](),
    ]


def make_container(settings: Settings, *overrides: Provider) -> AsyncContainer:
    """The app container for `settings.environment`; `overrides` (tests) replace bindings."""
    return make_async_container(*bindings(settings), *overrides, context={Settings: settings})


async def check_dependencies(container: AsyncContainer, settings: Settings) -> list[str] | None:
    """Start-up checks before serving or working; raises `ConfigurationError` to refuse.

    Returns what the Redis durability check found (None: not known, or no Redis), so that
    the serve processes a parent spawns get it through `known_dependencies` instead of each
    checking and warning again.
    """
    if not settings.queue_persistence:
        return None
    redis = await container.get(RedisClient)
    await check_cluster_mode(redis)
    problems = await check_durability(redis, settings)
    (await container.get(DurabilityWatch)).known(problems)
    return problems


async def known_dependencies(container: AsyncContainer, problems: list[str] | None) -> None:
    """Hand a container what its parent's `check_dependencies` found, so the process's first
    durability pass stays quiet about problems already logged once."""
    (await container.get(DurabilityWatch)).known(problems)
