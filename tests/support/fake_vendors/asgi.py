"""The fake vendors' HTTP edge: a bare ASGI app (Hypercorn serves it) around one handler.

Bare ASGI rather than a framework because a fake vendor must also fail the way a network
does: a hanging request that the server drops when it stops must reach the client as a
closed connection, not as the 500 a framework sends for a cancelled handler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from devtools.asgi import drop, hold, request_body, respond
from tests.support.fake_vendors.wire import Reply

Hang = Callable[[float], Awaitable[bool]]
"""Waits up to the seconds given; False when the client left or the server is stopping."""
Handler = Callable[[dict[str, Any], bytes, Hang], Awaitable[Reply | None]]
"""Answers one request (its ASGI scope, its body); None drops the connection."""


def asgi_app(handle: Handler, stopping: Callable[[], asyncio.Event | None]) -> Any:
    """An ASGI app that reads each request whole, passes it to `handle` and sends the reply.
    `stopping` gives the event that the server sets when it starts to stop."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await request_body(scope, receive, send)
        if body is None:
            return

        async def hang(seconds: float) -> bool:
            return await hold(receive, seconds, stopping()) == "held"

        reply = await handle(scope, body, hang)
        if reply is None:
            await drop(send)
        else:
            await respond(send, reply.status, reply.content_type, reply.body, reply.headers)

    return app
