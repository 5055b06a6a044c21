"""Start-up check that the Redis behind the queue keeps what it acknowledges (queue.md R16)."""

from __future__ import annotations

import logging

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from common_core.enums import EnvironmentType
from services.llm_provider_service.settings import ENV_PREFIX, ConfigurationError, Settings

logger = logging.getLogger(__name__)

ALLOW_HINT = (
    f"set {ENV_PREFIX}ALLOW_NON_DURABLE_REDIS=true to run anyway "
    "(e.g. a managed Redis that hides its configuration but is durable)"
)


async def durability_problems(redis: Redis) -> list[str]:
    """What in Redis's configuration could lose or evict queued requests; raises the
    client's ConnectionError/TimeoutError when Redis cannot be reached."""
    try:
        config = await redis.config_get("appendonly")
        config.update(await redis.config_get("maxmemory-policy"))
    except redis_errors.ResponseError as exc:
        return [f"cannot read Redis configuration ({exc}), so AOF and eviction are unverified"]
    problems = []
    if config.get("appendonly") != "yes":
        problems.append(
            "Redis has appendonly no: acknowledged enqueues are lost when Redis restarts"
        )
    policy = config.get("maxmemory-policy", "noeviction")
    if policy != "noeviction":
        problems.append(
            f"Redis has maxmemory-policy {policy}: it may evict queue keys under memory pressure"
        )
    return problems


async def check_durability(redis: Redis, settings: Settings) -> None:
    """Warn about a non-durable Redis; in production refuse to start (`ConfigurationError`)
    unless explicitly allowed. An unreachable Redis is only a warning: the service starts
    degraded and recovers by itself when Redis returns."""
    try:
        problems = await durability_problems(redis)
    except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
        logger.warning("Redis unreachable at start-up (%s); queueing unavailable until it is", exc)
        return
    if not problems:
        logger.info("Redis is durable: appendonly yes, maxmemory-policy noeviction")
        return
    message = "; ".join(problems)
    refuse = settings.environment is EnvironmentType.PRODUCTION
    if refuse and not settings.allow_non_durable_redis:
        raise ConfigurationError(f"{message}; {ALLOW_HINT}")
    logger.warning("%s (%s)", message, "allowed by setting" if refuse else ALLOW_HINT)
