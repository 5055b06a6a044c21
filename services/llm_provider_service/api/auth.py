"""Who is calling: every `/api/v1` request and WebSocket is authenticated before its route
runs, and the route reads the result with `current_caller()`.

`/healthz`, `/metrics` and the API documentation stay open: probes and scrapers carry no
caller key, and none of them shows a request or spends money.
"""

from __future__ import annotations

from dishka import AsyncContainer
from quart import Quart, g, request, websocket

from services.llm_provider_service.callers import Caller, Callers
from services.llm_provider_service.logging_setup import bind_log_context

API_PREFIX = "/api/v1/"


def current_caller() -> Caller | None:
    """The authenticated caller of this request, None when the service is open."""
    caller: Caller | None = g.get("caller")
    return caller


def register_authentication(app: Quart, container: AsyncContainer) -> None:
    """Authenticate every `/api/v1` request and WebSocket handshake; a missing or unknown key
    is refused with 401 (`UnauthorizedError`) before the route runs or the socket opens."""
    resolved: list[Callers] = []

    @app.before_serving
    async def _resolve_callers() -> None:
        resolved.append(await container.get(Callers))

    @app.before_request
    async def _authenticate_request() -> None:
        if request.path.startswith(API_PREFIX):
            g.caller = resolved[0].authenticate(request.headers.get("Authorization"))
            bind_log_context(caller=g.caller.name if g.caller else None)

    @app.before_websocket
    async def _authenticate_websocket() -> None:
        if websocket.path.startswith(API_PREFIX):
            g.caller = resolved[0].authenticate(websocket.headers.get("Authorization"))
            bind_log_context(caller=g.caller.name if g.caller else None)
