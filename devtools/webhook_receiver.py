"""A real webhook receiver: Hypercorn serving a bare ASGI app on 127.0.0.1, in the test's own
event loop.

`async with WebhookReceiver() as receiver:` listens on a free port until the block ends; the
`webhook_receiver` fixture (`tests.support.webhook_receiver`) does that for one test. Every
request is recorded in arrival order (`requests`); answers follow a script, one entry per
request, then the default 200:

    receiver.fail_next(2, status=503, headers={"Retry-After": "7"})
    receiver.redirect_next(receiver.url("/elsewhere"))
    receiver.delay_next(5.0)        # answer only after 5 s (or when the client hangs up)

`wait_for(n)` waits for n requests (or n answered with 2xx), `verified_bodies(secret)` are the
bodies whose signature header verifies with `common_core.webhooks.verify`. Keep-alive works
as httpx uses it (several requests per connection, one at a time).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

from hypercorn.asyncio import serve

from common_core.webhooks import SIGNATURE_HEADER, verify
from devtools.asgi import (
    drop,
    hold,
    hypercorn_config,
    listening_socket,
    request_body,
    request_line,
    respond,
)

_OK_BODY: Final = b'{"ok":true}'


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the receiver got it, and the status it was scripted to answer."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    """Lower-case names; repeated headers joined with ", "."""
    body: bytes
    status: int
    received_at: float = field(default_factory=time.time)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = _OK_BODY
    delay: float = 0.0
    content_type: str = "application/json"


class WebhookReceiver:
    """See the module docstring. Use it inside one event loop (the test's)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.default = Reply()
        """The answer when the script is empty."""
        self._requested_port = port
        self._port: int | None = None
        self._serving: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None
        self._script: deque[Reply] = deque()
        self._records: list[ReceivedRequest] = []
        self._answered: list[ReceivedRequest] = []
        self._changed: asyncio.Condition | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> WebhookReceiver:
        if self._serving is not None:
            return self
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        listener = listening_socket(self.host, self._requested_port)
        self._port = int(listener.getsockname()[1])
        config = hypercorn_config(listener, "webhook-receiver")
        app: Any = self._app  # an ASGI app; Hypercorn's own types want its TypedDicts
        self._serving = asyncio.create_task(
            serve(app, config, shutdown_trigger=self._stopping.wait),
            name="webhook-receiver",
        )
        return self

    async def stop(self) -> None:
        """Stop listening and drop every open connection (a delayed answer is not sent)."""
        serving, self._serving = self._serving, None
        if serving is None:
            return
        assert self._stopping is not None
        self._stopping.set()
        async with asyncio.timeout(10):
            await serving
        self._port = None

    async def __aenter__(self) -> WebhookReceiver:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # ---- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the webhook receiver is not running")
        return self._port

    def url(self, path: str = "/hook", *, host: str | None = None) -> str:
        """The receiver's URL for `path`; `host` replaces 127.0.0.1 (say `localhost`)."""
        return f"http://{host or self.host}:{self.port}{path}"

    # ---- the script --------------------------------------------------------------------------

    def respond_next(
        self,
        times: int = 1,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        body: bytes = _OK_BODY,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `times` requests (after those already scripted) like this."""
        if times < 1:
            raise ValueError("times must be at least 1")
        reply = Reply(status, tuple((headers or {}).items()), body, delay)
        self._script.extend([reply] * times)

    def fail_next(
        self,
        times: int = 1,
        *,
        status: int = 500,
        headers: Mapping[str, str] | None = None,
        body: bytes = b'{"error":"scripted failure"}',
    ) -> None:
        self.respond_next(times, status=status, headers=headers, body=body)

    def redirect_next(self, location: str, *, status: int = 302, times: int = 1) -> None:
        self.respond_next(times, status=status, headers={"Location": location}, body=b"")

    def delay_next(self, seconds: float, *, times: int = 1, status: int = 200) -> None:
        """Hold the next answers `seconds` (cut short when the client hangs up)."""
        self.respond_next(times, status=status, delay=seconds)

    def reset(self) -> None:
        """Forget the script and the records."""
        self._script.clear()
        self._records.clear()
        self._answered.clear()

    # ---- records -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received, oldest first (a copy)."""
        return list(self._records)

    @property
    def successful(self) -> list[ReceivedRequest]:
        """The requests answered with 2xx (the answer written, not merely scripted)."""
        return list(self._answered)

    def verified_bodies(self, secret: bytes, *, tolerance_seconds: int = 300) -> list[bytes]:
        """The bodies of the requests whose signature verifies with `secret`."""
        return [
            record.body
            for record in self._records
            if verify(
                secret,
                record.header(SIGNATURE_HEADER) or "",
                record.body,
                tolerance_seconds=tolerance_seconds,
            )
        ]

    async def wait_for(
        self,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109  (the wait is the point; it has a bound)
        *,
        successful: bool = False,
    ) -> list[ReceivedRequest]:
        """Wait until `count` requests (answered with 2xx when `successful`) arrived; the
        records then. TimeoutError, saying what did arrive, when they do not in time."""
        if self._changed is None:
            raise RuntimeError("the webhook receiver is not running")

        def records() -> list[ReceivedRequest]:
            return self.successful if successful else self.requests

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(records()) >= count)
        except TimeoutError:
            seen = [(r.method, r.path, r.status) for r in self._records]
            kind = "successful requests" if successful else "requests"
            raise TimeoutError(
                f"waited {timeout:g} s for {count} {kind}, got {len(records())}: {seen}"
            ) from None
        return records()

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    # ---- the server --------------------------------------------------------------------------

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await request_body(scope, receive, send)
        if body is None:
            return
        reply = self._script.popleft() if self._script else self.default
        method, path, query, headers = request_line(scope)
        record = ReceivedRequest(method, path, query, headers, body, reply.status)
        self._records.append(record)
        await self._notify()
        if reply.delay > 0:
            held = await hold(receive, reply.delay, self._stopping)
            if held == "stopping":
                await drop(send)
            if held != "held":  # the client hung up, or the receiver is stopping
                return
        await respond(send, reply.status, reply.content_type, reply.body, reply.headers)
        if 200 <= reply.status < 300:
            self._answered.append(record)
            await self._notify()
