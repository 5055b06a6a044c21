"""`/healthz`, `/livez` and `/readyz` for orchestrators and `/metrics` for Prometheus."""

from __future__ import annotations

import asyncio
import contextlib

from dishka import FromDishka
from prometheus_client import CONTENT_TYPE_LATEST
from quart import Blueprint, Response
from quart_dishka import inject
from quart_schema import document_response

from common_core.api_models import (
    DependencyHealth,
    HealthResponse,
    LivenessResponse,
    ReadinessResponse,
)
from common_core.enums import CircuitBreakerState, HealthStatus
from services.llm_provider_service.api.openapi import documented
from services.llm_provider_service.api.responses import json_response
from services.llm_provider_service.breaker import CircuitBreakers
from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.models import StoreMemory
from services.llm_provider_service.protocols import EventPublisher, RequestQueue, ResultOutbox
from services.llm_provider_service.provider_registry import ProviderRegistry
from services.llm_provider_service.queue.durability import DurabilityWatch
from services.llm_provider_service.settings import Settings

bp = Blueprint("health", __name__)

_RANK = {HealthStatus.HEALTHY: 0, HealthStatus.DEGRADED: 1, HealthStatus.UNHEALTHY: 2}
STALE_RETRY_ROUNDS = 5


@bp.get("/healthz")
@document_response(HealthResponse, 200)
@document_response(HealthResponse, 503)
@documented("Health of the service and of each dependency.")
@inject
async def healthz(
    settings: FromDishka[Settings],
    queue: FromDishka[RequestQueue],
    outbox: FromDishka[ResultOutbox],
    publisher: FromDishka[EventPublisher],
    breakers: FromDishka[CircuitBreakers],
    registry: FromDishka[ProviderRegistry],
    service_metrics: FromDishka[ServiceMetrics],
    watch: FromDishka[DurabilityWatch],
) -> Response:
    """200 healthy or degraded (still serving), 503 unhealthy (nothing can be served)."""
    deps: dict[str, DependencyHealth] = {}
    depth: int | None = None
    try:
        depth = (await queue.stats()).total_depth
        deps["queue"] = await _queue_memory_health(queue, settings, service_metrics)
    except QueueUnavailableError as exc:
        deps["queue"] = DependencyHealth(status=HealthStatus.DEGRADED, detail=exc.message)
    if (durability := watch.health()) is not None:
        deps["queue_durability"] = durability
    deps["events"] = publisher.health()
    deps["outbox"] = await _outbox_health(outbox, settings)
    for breaker in breakers:
        name = breaker.provider
        if not registry.is_available(name):
            continue
        state = breaker.state
        status = HealthStatus.HEALTHY
        if state is not CircuitBreakerState.CLOSED:
            status = HealthStatus.DEGRADED
        deps[f"provider:{name.value}"] = DependencyHealth(
            status=status, detail=f"circuit breaker {state.value}"
        )
    default = settings.default_provider
    if not registry.is_available(default):
        deps[f"provider:{default.value}"] = DependencyHealth(
            status=HealthStatus.UNHEALTHY, detail="the default provider is not configured"
        )
    overall = max((d.status for d in deps.values()), key=_RANK.__getitem__)
    body = HealthResponse(
        status=overall,
        environment=settings.environment.value,
        queue_depth=depth,
        dependencies=deps,
    )
    code = 503 if overall is HealthStatus.UNHEALTHY else 200
    return json_response(body, code)


@bp.get("/livez")
@document_response(LivenessResponse, 200)
@documented("Liveness: whether the process answers at all.")
async def livez() -> Response:
    """Liveness: 200 whenever the process and its event loop answer. It asks no dependency
    (Redis, Kafka, provider keys), so a liveness probe never restarts a replica for an outage
    that a restart cannot fix."""
    return json_response(LivenessResponse(), 200)


@bp.get("/readyz")
@document_response(ReadinessResponse, 200)
@document_response(ReadinessResponse, 503)
@documented("Readiness: whether this replica can take requests now.")
@inject
async def readyz(
    settings: FromDishka[Settings],
    queue: FromDishka[RequestQueue],
    publisher: FromDishka[EventPublisher],
) -> Response:
    """Readiness: 503 while this replica cannot take requests: the queue's Redis unreachable
    or refusing writes for memory, or Kafka (when enabled) unreachable. A provider without a
    key or with an open breaker does not count: requests then queue, as designed."""
    checks = {"queue": await _queue_readiness(queue)}
    if settings.uses_kafka:
        checks["kafka"] = await publisher.readiness()
    ready = all(check.status is HealthStatus.HEALTHY for check in checks.values())
    return json_response(ReadinessResponse(ready=ready, checks=checks), 200 if ready else 503)


async def _queue_readiness(queue: RequestQueue) -> DependencyHealth:
    try:
        memory = await queue.memory()
    except QueueUnavailableError as exc:
        return DependencyHealth(status=HealthStatus.UNHEALTHY, detail=exc.message)
    if memory is None:
        return DependencyHealth(status=HealthStatus.HEALTHY, detail="queue in process memory")
    if memory.writes_refused:
        detail = f"Redis refuses writes: out of memory ({memory.used_bytes} bytes used)"
        return DependencyHealth(status=HealthStatus.UNHEALTHY, detail=detail)
    if memory.unreachable:  # a partial outage: every replica sees it, none should leave
        detail = f"Redis answers and takes writes, but not for {_shards(memory)}"
        return DependencyHealth(status=HealthStatus.HEALTHY, detail=detail)
    return DependencyHealth(status=HealthStatus.HEALTHY, detail="Redis answers and takes writes")


def _shards(memory: StoreMemory) -> str:
    names = ", ".join(memory.unreachable)
    return f"the queue shards of {names} (their master is unreachable; they get 503)"


async def _queue_memory_health(
    queue: RequestQueue, settings: Settings, service_metrics: ServiceMetrics
) -> DependencyHealth:
    """Healthy; degraded once Redis uses `REDIS_MEMORY_DEGRADED_RATIO` of its maxmemory;
    unhealthy while it refuses writes for memory (nothing new can be queued or kept)."""
    memory = await queue.memory()
    if memory is None:
        return DependencyHealth(status=HealthStatus.HEALTHY)
    service_metrics.observe_store_memory(memory)
    ratio = memory.used_ratio
    used = f"{memory.used_bytes} bytes used of maxmemory {memory.max_bytes}"
    if memory.writes_refused:
        detail = f"Redis refuses writes: out of memory ({used})"
        return DependencyHealth(status=HealthStatus.UNHEALTHY, detail=detail)
    if ratio is None:
        return DependencyHealth(status=HealthStatus.HEALTHY, detail="Redis has no maxmemory")
    status = HealthStatus.HEALTHY
    if ratio >= settings.redis.memory_degraded_ratio:
        status = HealthStatus.DEGRADED
    return DependencyHealth(status=status, detail=f"Redis memory at {ratio:.0%} ({used})")


async def _outbox_health(outbox: ResultOutbox, settings: Settings) -> DependencyHealth:
    """Degraded once the oldest undelivered result has waited through several retry rounds:
    results are not reaching their consumers (see documentation/events.md)."""
    try:
        stats = await outbox.stats()
    except QueueUnavailableError as exc:
        return DependencyHealth(status=HealthStatus.DEGRADED, detail=exc.message)
    pending = sum(stats.pending.values())
    age = stats.oldest_age_seconds or 0.0
    detail = f"{pending} result deliveries pending, oldest {age:.0f}s"
    stale = age > STALE_RETRY_ROUNDS * settings.outbox.retry_max_seconds
    return DependencyHealth(
        status=HealthStatus.DEGRADED if stale else HealthStatus.HEALTHY, detail=detail
    )


@bp.get("/metrics")
@documented(
    "Prometheus metrics of the service and of the shared queue.",
    text_responses={200: (CONTENT_TYPE_LATEST.split(";")[0], "Prometheus text exposition.")},
)
@inject
async def metrics(
    service_metrics: FromDishka[ServiceMetrics],
    queue: FromDishka[RequestQueue],
    outbox: FromDishka[ResultOutbox],
) -> Response:
    """Prometheus text exposition of every `llm_provider_*` metric. Queue and outbox gauges
    are read at scrape time, so every replica exports the shared queue's and outbox's state."""
    with contextlib.suppress(QueueUnavailableError):
        service_metrics.observe_queue(await queue.stats())
    with contextlib.suppress(QueueUnavailableError):
        service_metrics.observe_outbox(await outbox.stats())
    with contextlib.suppress(QueueUnavailableError):
        if (memory := await queue.memory()) is not None:
            service_metrics.observe_store_memory(memory)
    # Built in a worker thread: the text of a large registry takes a while, and the event
    # loop keeps serving meanwhile (prometheus-client's metrics are thread-safe).
    text = await asyncio.to_thread(service_metrics.exposition)
    return Response(text, content_type=CONTENT_TYPE_LATEST)
