"""A real webhook receiver: an HTTP/1.1 server on 127.0.0.1 in the test's own event loop.

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
import contextlib
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final

import h11

from common_core.webhooks import SIGNATURE_HEADER, verify
from devtools.http11 import read_request, write_response

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
        self._server: asyncio.Server | None = None
        self._script: deque[Reply] = deque()
        self._records: list[ReceivedRequest] = []
        self._answered: list[ReceivedRequest] = []
        self._changed: asyncio.Condition | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._stopping = False

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> WebhookReceiver:
        if self._server is not None:
            return self
        self._changed = asyncio.Condition()
        self._stopping = False
        self._server = await asyncio.start_server(
            self._connection, host=self.host, port=self._requested_port
        )
        self._port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        """Stop listening and drop every open connection (a delayed answer is not sent)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping = True
        server.close()
        # Aborting the transports ends every handler through its reader (EOF), so none is
        # cancelled (Python 3.11's stream callback logs cancelled handler tasks as errors).
        for writer in self._connections.values():
            writer.transport.abort()
        tasks = list(self._connections)
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=5)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        await server.wait_closed()
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

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                received = await read_request(conn, reader)
                if received is None:
                    return
                request, body = received
                reply = self._script.popleft() if self._script else self.default
                record = _record(request, body, reply.status)
                self._records.append(record)
                await self._notify()
                if reply.delay > 0 and not await _hold(conn, reader, reply.delay):
                    return  # the client hung up while we held the answer
                await _answer(conn, writer, reply)
                if 200 <= reply.status < 300:
                    self._answered.append(record)
                    await self._notify()
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            return
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._connections.pop(task, None)  # only now, so that stop() waits for all of it


def _record(request: h11.Request, body: bytes, status: int) -> ReceivedRequest:
    path, _, query = request.target.decode("latin-1").partition("?")
    headers: dict[str, str] = {}
    for name, value in request.headers:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return ReceivedRequest(request.method.decode("latin-1"), path, query, headers, body, status)


async def _hold(conn: h11.Connection, reader: asyncio.StreamReader, seconds: float) -> bool:
    """Wait `seconds`; False if the client hangs up first."""
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            async with asyncio.timeout(left):
                data = await reader.read(65536)
        except TimeoutError:
            return True
        if not data:
            return False
        conn.receive_data(data)  # a pipelined request: h11 keeps it for the next cycle
    return True


async def _answer(conn: h11.Connection, writer: asyncio.StreamWriter, reply: Reply) -> None:
    await write_response(conn, writer, reply.status, reply.content_type, reply.body, reply.headers)
