"""`create_app()`: builds the Quart app, its container and the in-process queue worker."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from dishka import AsyncContainer
from opentelemetry.trace import Tracer
from quart import Quart, Request, Response, Websocket, g, request, websocket
from quart.typing import ResponseTypes
from quart_dishka import QuartDishka

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
from services.llm_provider_service.api.docs import register_docs
from services.llm_provider_service.api.errors import register_error_handlers
from services.llm_provider_service.background import BackgroundTasks
from services.llm_provider_service.di import make_container
from services.llm_provider_service.logging_setup import (
    bind_log_context,
    clear_log_context,
    log_access,
)
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.redaction import Redactor, redact_logs
from services.llm_provider_service.settings import Settings, load_settings
from services.llm_provider_service.tracing import ServerSpans, name_route

logger = logging.getLogger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"


def create_app(settings: Settings | None = None, container: AsyncContainer | None = None) -> Quart:
    """The app for `settings` (read from the environment when omitted).

    Raises `ConfigurationError` for contradictory settings. Nothing connects until the app
    starts serving; the container is closed after the worker has drained.
    """
    settings = settings or load_settings()
    container = container or make_container(settings)
    app = Quart("llm_provider_service")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_body_bytes
    register_docs(app)
    blueprints = (comparison.bp, status.bp, status_ws.bp, providers.bp, position_bias.bp, health.bp)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    if not settings.environment.is_deployed:
        app.register_blueprint(drills.bp)
    register_error_handlers(app)
    _register_request_hooks(app, container)
    _register_tracing(app, container)
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
        g.correlation_id = _correlation_id(request.headers.get(CORRELATION_HEADER))
        clear_log_context()  # every line of this request names it (logging_setup.py)
        bind_log_context(correlation_id=g.correlation_id)

    @app.before_websocket
    async def _start_websocket() -> None:
        g.started = time.perf_counter()
        g.correlation_id = _correlation_id(websocket.headers.get(CORRELATION_HEADER))
        clear_log_context()
        bind_log_context(correlation_id=g.correlation_id)

    @app.after_websocket
    async def _finish_websocket(response: ResponseTypes | None) -> ResponseTypes | None:
        # A refused handshake (e.g. 401) is an HTTP response: it names its id like any other.
        if response is not None and g.get("correlation_id") is not None:
            response.headers[CORRELATION_HEADER] = str(g.correlation_id)
        if isinstance(response, Response):
            g.websocket_status = response.status_code
        return response

    @app.teardown_websocket
    async def _log_websocket(_exc: BaseException | None) -> None:
        # Teardown, not after_websocket: a socket the client closes cancels its handler,
        # and only the teardown still runs. 101: the socket was accepted.
        _access_line(websocket, g.get("websocket_status", 101), None, g.get("started"))

    @app.after_request
    async def _finish(response: Response) -> Response:
        if g.get("correlation_id") is not None:
            response.headers[CORRELATION_HEADER] = str(g.correlation_id)
        started = g.get("started")
        if metrics_holder and started is not None:
            elapsed = time.perf_counter() - started
            metrics_holder[0].record_http_request(
                request.method,
                request.url_rule.rule if request.url_rule else None,
                response.status_code,
                elapsed,
                max(0.0, elapsed - g.provider_seconds),
            )
        _access_line(request, response.status_code, response.content_length, started)
        return response


def _register_tracing(app: Quart, container: AsyncContainer) -> None:
    """A server span per HTTP request (`tracing.md`), from the container's tracer."""
    spans = ServerSpans(app.asgi_app)
    app.asgi_app = spans  # type: ignore[method-assign]

    @app.before_serving
    async def _resolve_tracer() -> None:
        spans.tracer = await container.get(Tracer)

    @app.before_request
    async def _name_span() -> None:
        name_route(request.method, request.url_rule.rule if request.url_rule else None)


def _access_line(
    incoming: Request | Websocket, status: int, size: int | None, started: float | None
) -> None:
    """The access log's line for a request or WebSocket (Hypercorn's own stays off)."""
    log_access(
        method="WEBSOCKET" if isinstance(incoming, Websocket) else incoming.method,
        route=incoming.url_rule.rule if incoming.url_rule else None,
        path=incoming.path,
        status=status,
        duration_seconds=time.perf_counter() - started if started is not None else 0.0,
        size=size,
        client=incoming.remote_addr,
    )


def _correlation_id(header: str | None) -> uuid.UUID:
    """Every response, error and WebSocket message carries a correlation id: the caller's
    (a valid `X-Correlation-ID`), or a new one."""
    try:
        return uuid.UUID(header) if header else uuid.uuid4()
    except ValueError:
        return uuid.uuid4()


def _register_lifecycle(app: Quart, container: AsyncContainer, settings: Settings) -> None:
    background: list[BackgroundTasks] = []
    unredact: list[Callable[[], None]] = []

    @app.before_serving
    async def _redact_logs() -> None:
        # No log line of the process carries a configured secret or a vendor key.
        unredact.append(redact_logs(await container.get(Redactor)))

    @app.before_serving
    async def _start_background() -> None:
        tasks = await BackgroundTasks.start(
            container, settings, with_worker=settings.worker.enabled
        )
        background.append(tasks)

    @app.after_serving
    async def _shutdown() -> None:
        for tasks in background:
            await tasks.stop()  # the worker drains first, then the relay and the rest
        await container.close()
        logger.info("llm_provider_service stopped")
        for remove in unredact:
            remove()
