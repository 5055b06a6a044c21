"""The fake vendors' HTTP edge: a bare ASGI app (Hypercorn serves it) around one handler.

Bare ASGI rather than a framework because a fake vendor must also fail the way a network
does: a hanging request that the server drops when it stops must reach the client as a
closed connection, not as the 500 a framework sends for a cancelled handler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.support.fake_vendors.wire import Reply

Hang = Callable[[float], Awaitable[bool]]
"""Waits up to the seconds given; False when the client left or the server is stopping."""
Handler = Callable[[dict[str, Any], bytes, Hang], Awaitable[Reply | None]]
"""Answers one request (its ASGI scope, its body); None drops the connection."""


def asgi_app(handle: Handler, stopping: Callable[[], asyncio.Event | None]) -> Any:
    """An ASGI app that reads each request whole, passes it to `handle` and sends the reply.
    `stopping` gives the event that the server sets when it starts to stop."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)

        async def hang(seconds: float) -> bool:
            event = stopping()
            waits = [asyncio.sleep(seconds), receive(), *([event.wait()] if event else [])]
            tasks = [asyncio.ensure_future(waiting) for waiting in waits]
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            return tasks[0] in done

        reply = await handle(scope, body, hang)
        if reply is None:  # a response begun and never finished: the connection closes
            await send({"type": "http.response.start", "status": 200, "headers": []})
            return
        headers = [(b"content-type", reply.content_type.encode())]
        headers += [(name.encode(), value.encode()) for name, value in reply.headers]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})

    return app


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
