"""Whether the Redis behind the queue keeps what it acknowledges (queue.md R16): checked at
start-up (`check_durability`) and again while running (`DurabilityWatch`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio.cluster import RedisCluster

from common_core.api_models import DependencyHealth
from common_core.enums import EnvironmentType, HealthStatus
from services.llm_provider_service.redis.client import RedisClient
from services.llm_provider_service.redis.errors import UNREACHABLE
from services.llm_provider_service.settings import ENV_PREFIX, ConfigurationError, Settings
from services.llm_provider_service.settings.infrastructure import RedisSettings

logger = logging.getLogger(__name__)

ALLOW_HINT = (
    f"set {ENV_PREFIX}ALLOW_NON_DURABLE_REDIS=true to run anyway "
    "(e.g. a managed Redis that hides its configuration but is durable)"
)


async def durability_problems(redis: RedisClient) -> list[str]:
    """What in Redis's configuration could lose or evict queued requests; raises the
    client's ConnectionError/TimeoutError when Redis cannot be reached. On a Redis Cluster
    every master is read, and each problem names its master: a master configured badly
    loses the shards it serves. One master unreachable makes the whole check unreachable
    (nothing new is known), so a check never reads an outage as a configuration problem."""
    if not isinstance(redis, RedisCluster):
        return await _problems_of(redis.config_get, "Redis")
    await redis.initialize()  # learns the masters, once
    problems: list[str] = []
    for node in redis.get_primaries():
        problems += await _problems_of(
            partial(redis.config_get, target_nodes=node), f"Redis master {node.name}"
        )
    return problems


async def _problems_of(
    config_get: Callable[[str], Awaitable[dict[Any, Any]]], name: str
) -> list[str]:
    """The durability problems of one server, read with `config_get`, `name` starting each."""
    config: dict[Any, Any] = {}
    try:
        for parameter in ("appendonly", "appendfsync", "maxmemory-policy"):
            config.update(await config_get(parameter))
    except redis_errors.ResponseError as exc:
        return [f"cannot read {name} configuration ({exc}), so AOF and eviction are unverified"]
    problems = []
    if config.get("appendonly") != "yes":
        problems.append(
            f"{name} has appendonly no: acknowledged enqueues are lost when Redis restarts"
        )
    elif config.get("appendfsync", "everysec") not in {"always", "everysec"}:
        problems.append(
            f"{name} has appendfsync {config.get('appendfsync')}: the AOF reaches the disk only "
            "when the OS flushes it, so a power loss or kernel crash loses acknowledged enqueues"
        )
    policy = config.get("maxmemory-policy", "noeviction")
    if policy != "noeviction":
        problems.append(
            f"{name} has maxmemory-policy {policy}: it may evict queue keys under memory pressure"
        )
    return problems


async def check_durability(redis: RedisClient, settings: Settings) -> list[str] | None:
    """Warn about a non-durable Redis; in production refuse to start (`ConfigurationError`)
    unless explicitly allowed. An unreachable Redis is only a warning: the service starts
    degraded and recovers by itself when Redis returns.

    Returns the problems found, or None when Redis could not be reached.
    """
    try:
        problems = await durability_problems(redis)
    except UNREACHABLE as exc:
        logger.warning("Redis unreachable at start-up (%s); queueing unavailable until it is", exc)
        return None
    if not problems:
        logger.info(
            "Redis is durable: appendonly yes, appendfsync always or everysec, "
            "maxmemory-policy noeviction"
        )
        return problems
    message = "; ".join(problems)
    refuse = settings.environment is EnvironmentType.PRODUCTION
    if refuse and not settings.redis.allow_non_durable:
        raise ConfigurationError(f"{message}; {ALLOW_HINT}")
    logger.warning("%s (%s)", message, "allowed by setting" if refuse else ALLOW_HINT)
    return problems


class DurabilityWatch:
    """The durability check again, every REDIS_DURABILITY_CHECK_INTERVAL_SECONDS while the
    process runs, in every environment: an operator's `CONFIG SET appendonly no` shows in
    `/healthz` as `queue_durability` degraded, with one WARNING when the problems change and
    an INFO line when they are gone. It never stops the service. Without a Redis (the
    in-memory queue) it checks and reports nothing."""

    def __init__(self, redis: RedisClient | None, section: RedisSettings) -> None:
        self._redis = redis
        self._interval = section.durability_check_interval_seconds
        self._problems: list[str] | None = None  # None: not known yet

    def known(self, problems: list[str] | None) -> None:
        """What the start-up check found (already logged), so the first pass stays quiet."""
        if problems is not None:
            self._problems = problems

    async def check(self) -> None:
        """One check; an unreachable Redis keeps what was last known (the queue's own health
        reports the outage)."""
        if self._redis is None:
            return
        try:
            problems = await durability_problems(self._redis)
        except UNREACHABLE:  # nothing new is known
            return
        if problems == self._problems:
            return
        if problems:
            logger.warning(
                "Redis durability changed while running: %s (the service keeps serving; see "
                "queue.md, Durability)",
                "; ".join(problems),
            )
        elif self._problems:
            logger.info("Redis is durable again: %s resolved", "; ".join(self._problems))
        self._problems = problems

    async def run(self, stop: asyncio.Event) -> None:
        """Check at once, then every interval, until `stop` is set."""
        if self._redis is None:
            return
        while not stop.is_set():
            try:
                await self.check()
            except Exception:  # a surprise must not end the watch
                logger.exception("Redis durability check failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)

    def health(self) -> DependencyHealth | None:
        """`queue_durability` for `/healthz`; None before the first answer, or without Redis."""
        if self._redis is None or self._problems is None:
            return None
        if not self._problems:
            return DependencyHealth(
                status=HealthStatus.HEALTHY,
                detail="appendonly yes, appendfsync always or everysec, noeviction",
            )
        return DependencyHealth(status=HealthStatus.DEGRADED, detail="; ".join(self._problems))
