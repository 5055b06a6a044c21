"""`create_app()`: builds the Quart app, its container and the in-process queue worker."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from dishka import AsyncContainer
from quart import Quart, Response, g, request
from quart_dishka import QuartDishka
from quart_schema import Info, QuartSchema

from services.llm_provider_service.api import (
    comparison,
    drills,
    health,
    position_bias,
    providers,
    status,
    status_ws,
)
from services.llm_provider_service.api.auth import register_authentication
from services.llm_provider_service.api.errors import register_error_handlers
from services.llm_provider_service.di import make_container
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.queue.durability import DurabilityWatch
from services.llm_provider_service.relay import ResultRelay
from services.llm_provider_service.settings import Settings, load_settings
from services.llm_provider_service.worker import QueueWorker

logger = logging.getLogger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"


def create_app(settings: Settings | None = None, container: AsyncContainer | None = None) -> Quart:
    """The app for `settings` (read from the environment when omitted).

    Raises `ConfigurationError` for contradictory settings. Nothing connects until the app
    starts serving; the container is closed after the worker has drained.
    """
    settings = settings or load_settings()
    settings.check_consistency()
    container = container or make_container(settings)
    app = Quart("llm_provider_service")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_body_bytes
    QuartSchema(
        app,
        info=Info(title="LLM Provider Service", version="1.0.0"),
        swagger_ui_path="/docs",
        redoc_ui_path="/redocs",
        scalar_ui_path=None,
    )
    blueprints = (comparison.bp, status.bp, status_ws.bp, providers.bp, position_bias.bp, health.bp)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    if not settings.environment.is_deployed:
        app.register_blueprint(drills.bp)
    register_error_handlers(app)
    _register_request_hooks(app, container)
    register_authentication(app, container)  # after the hooks that give errors an id
    QuartDishka(app=app, container=container)
    _register_lifecycle(app, container, settings)
    return app


def _register_request_hooks(app: Quart, container: AsyncContainer) -> None:
    metrics_holder: list[ServiceMetrics] = []

    @app.before_serving
    async def _resolve_metrics() -> None:
        metrics_holder.append(await container.get(ServiceMetrics))

    @app.before_request
    async def _start() -> None:
        g.started = time.perf_counter()
        g.provider_seconds = 0.0
        # Every response and error carries a correlation id: the caller's, or a new one.
        header = request.headers.get(CORRELATION_HEADER)
        try:
            g.correlation_id = uuid.UUID(header) if header else uuid.uuid4()
        except ValueError:
            g.correlation_id = uuid.uuid4()

    @app.after_request
    async def _finish(response: Response) -> Response:
        if g.get("correlation_id") is not None:
            response.headers[CORRELATION_HEADER] = str(g.correlation_id)
        started = g.get("started")
        if metrics_holder and started is not None:
            elapsed = time.perf_counter() - started
            route = request.url_rule.rule if request.url_rule else "unmatched"
            m = metrics_holder[0]
            m.http_requests.labels(request.method, route, str(response.status_code)).inc()
            m.http_latency.labels(request.method, route).observe(elapsed)
            m.service_overhead.labels(route).observe(max(0.0, elapsed - g.provider_seconds))
        return response


def _register_lifecycle(app: Quart, container: AsyncContainer, settings: Settings) -> None:
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    relay_stop = asyncio.Event()
    watch_stop = asyncio.Event()
    watches: list[asyncio.Task[None]] = []

    @app.before_serving
    async def _start_worker() -> None:
        watch = await container.get(DurabilityWatch)
        watches.append(asyncio.create_task(watch.run(watch_stop), name="durability-watch"))
        if settings.worker_enabled:
            worker = await container.get(QueueWorker)
            tasks.append(asyncio.create_task(worker.run(stop), name="queue-worker"))
        # Every replica relays: results of immediate requests are in the outbox too.
        relay = await container.get(ResultRelay)
        tasks.append(asyncio.create_task(relay.run(relay_stop), name="result-relay"))

    @app.after_serving
    async def _shutdown() -> None:
        stop.set()
        await asyncio.gather(*tasks[:-1], return_exceptions=True)  # the worker drains first
        relay_stop.set()  # then the relay ends its pass; what is left waits in the outbox
        await asyncio.gather(*tasks, return_exceptions=True)
        watch_stop.set()
        await asyncio.gather(*watches, return_exceptions=True)
        await container.close()
        logger.info("llm_provider_service stopped")
