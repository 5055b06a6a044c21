"""What the development HTTP servers share: a bare ASGI app's plumbing and Hypercorn's
configuration on a socket bound here, so that the port is known before it serves."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from hypercorn.config import Config


def listening_socket(host: str, port: int = 0) -> socket.socket:
    """A TCP socket bound to `host`:`port` (0: a free one) and listening: connections wait
    in its backlog until the server accepts them."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen()
    return listener


def hypercorn_config(listener: socket.socket, name: str) -> Config:
    """Hypercorn on `listener` (which it then owns), without an access log. A request still
    in flight when it stops gets a second to finish; idle connections stay open as long as
    the clients keep them (their pools reuse them, and a test client does not retry)."""
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]
    config.accesslog = None
    config.errorlog = logging.getLogger(f"hypercorn.{name}")
    config.graceful_timeout = 1.0
    config.keep_alive_timeout = 3600
    return config


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def request_body(scope: dict[str, Any], receive: Any, send: Any) -> bytes | None:
    """The HTTP request's whole body; None when the client left first, or when `scope` was
    the lifespan (answered here: there is nothing to start or stop)."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return None
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def hold(receive: Any, seconds: float, stopping: asyncio.Event | None) -> str:
    """Keep the request waiting `seconds`: "held", or "gone" when the client hangs up first,
    "stopping" when `stopping` is set first."""
    waits: dict[asyncio.Future[Any], str] = {
        asyncio.ensure_future(asyncio.sleep(seconds)): "held",
        asyncio.ensure_future(receive()): "gone",  # nothing is left to read but http.disconnect
    }
    if stopping is not None:
        waits[asyncio.ensure_future(stopping.wait())] = "stopping"
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return waits[next(iter(done))]


def request_line(scope: dict[str, Any]) -> tuple[str, str, str, dict[str, str]]:
    """Method, path (as sent), query and headers (lower-case names, repeats joined with
    ", ") of an HTTP scope."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        key, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope["query_string"].decode("latin-1")
    return scope["method"], path.decode("latin-1"), query, headers


async def respond(
    send: Any, status: int, content_type: str, body: bytes, headers: Any = ()
) -> None:
    """One whole response."""
    fields = [(b"content-type", content_type.encode())]
    fields += [(name.encode(), value.encode()) for name, value in headers]
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": body})


async def drop(send: Any) -> None:
    """End the exchange without an answer: the response is begun and never finished, so
    Hypercorn closes the connection (an app that sent nothing would get a 500 sent for it)."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
