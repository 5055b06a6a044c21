"""The service over real HTTP and real WebSockets, in the test's own event loop.

    async with served_app(make_settings(), *overrides) as served:
        async with httpx.AsyncClient(base_url=served.base_url) as http: ...

builds the app exactly as the service does (`make_container(settings, *overrides)`, then
`create_app(settings, container)`), serves it with Hypercorn (`hypercorn.asyncio.serve`,
after `use_json_protocol_errors()`, as `__main__` does) on 127.0.0.1 on a free port, and
yields once `/healthz` answers. On exit it triggers Hypercorn's graceful shutdown and waits
for it: the app's `after_serving` runs (the worker drains, the container closes).
`overrides` are dishka providers that replace bindings, as in
`tests/integration/conftest.py`'s `start_app`.

The listening socket is bound before Hypercorn starts and handed over as `fd://`, so the
port is known and never raced for. Close your clients' WebSockets before the block ends:
Hypercorn waits its graceful timeout (`WORKER_SHUTDOWN_GRACE_SECONDS` + 5 s) for an open
one, then cancels it (the client sees close code 1011). Idle HTTP keep-alive connections do
not delay the shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from dishka import AsyncContainer, Provider
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

from services.llm_provider_service.app import create_app
from services.llm_provider_service.di import make_container
from services.llm_provider_service.server_errors import use_json_protocol_errors
from services.llm_provider_service.settings import Settings

HOST = "127.0.0.1"
STARTUP_SECONDS = 15.0
SHUTDOWN_SECONDS = 15.0


@dataclass(frozen=True)
class ServedApp:
    """A running service: its URLs, and the app and container behind them."""

    base_url: str
    """`http://127.0.0.1:<port>`, no trailing slash."""
    port: int
    app: Quart
    container: AsyncContainer
    settings: Settings

    @property
    def ws_url(self) -> str:
        """`ws://127.0.0.1:<port>`, the base of the WebSocket routes."""
        return f"ws://{HOST}:{self.port}"


@contextlib.asynccontextmanager
async def served_app(settings: Settings, *overrides: Provider) -> AsyncIterator[ServedApp]:
    """Serve the app for `settings` until the block ends; see the module docstring.

    Raises `RuntimeError` when the server stops or `/healthz` does not answer within
    `STARTUP_SECONDS` (Hypercorn's own error, such as a failed `before_serving`, is chained).
    """
    container = make_container(settings, *overrides)
    app = create_app(settings, container)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    port = int(listener.getsockname()[1])
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]  # Hypercorn owns and closes the socket now
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = settings.worker.shutdown_grace_seconds + 5.0
    use_json_protocol_errors()
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait), name="hypercorn")
    base_url = f"http://{HOST}:{port}"
    try:
        await _until_healthy(base_url, server)
        yield ServedApp(base_url, port, app, container, settings)
    finally:
        stop.set()
        async with asyncio.timeout(SHUTDOWN_SECONDS):
            await server


async def _until_healthy(base_url: str, server: asyncio.Task[None]) -> None:
    """Return once GET /healthz answers (any status: degraded is still serving)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=1.0) as http:
        async with asyncio.timeout(STARTUP_SECONDS):
            while True:
                if server.done():
                    raise RuntimeError("the server stopped during start-up") from (
                        server.exception()
                    )
                with contextlib.suppress(httpx.TransportError):
                    await http.get("/healthz")
                    return
                await asyncio.sleep(0.02)
