"""One HTTP/1.1 client connection for `lean_transport`: an asyncio `Protocol` whose bytes the
C parser `httptools` (llhttp, as uvicorn uses it) reads, so nothing is parsed by hand.

Why not httpcore2: under the vendor SDKs it runs each request through anyio streams, h11's
pure-Python state machine and its pool's bookkeeping; here a request is one `write` of the
head and body, and the answer arrives through the parser's callbacks with no task switch
beyond the one await for the response head. The connection only moves bytes and reports what
went wrong as plain outcomes (`ConnectionLostError`, `ParseError`, `TimeoutError`); the transport
maps them onto httpx2's exceptions as httpcore2 does.
"""

from __future__ import annotations

import asyncio
import select
from collections import deque
from typing import cast

import httptools

_HIGH_WATER = 256 * 1024
"""Body bytes buffered before the socket is paused (flow control for large downloads)."""


class ConnectionLostError(Exception):
    """The server closed (or reset) the connection before the response was complete."""

    def __init__(self, message: str, *, reset: bool) -> None:
        super().__init__(message)
        self.reset = reset


class ParseError(Exception):
    """The server's bytes are not an HTTP/1.1 response."""


class LeanConnection(asyncio.Protocol):
    """An HTTP/1.1 connection: one request at a time; reusable once a response was read whole
    and neither side asked to close."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._error: Exception | None = None
        self.closed = False
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.done = False
        self._name = b""
        self._framed = False  # Content-Length or Transfer-Encoding: else the body ends at EOF
        self._keep_alive = False
        self._head_only = False
        self._idle = False  # between a complete response and the next request
        self._close_after = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports (under `serve`) are not `asyncio.Transport` instances.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._idle:  # bytes no request asked for: the connection cannot be trusted
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ParseError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(ParseError(f"malformed response: {exc}"))

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.head_done and not self.done and not self._framed and exc is None:
            self.done = True  # a body delimited by the end of the connection
        elif not self.done:
            message = "Server disconnected without sending a complete response."
            self._error = self._error or ConnectionLostError(message, reset=exc is not None)
        self._wake()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def pause_writing(self) -> None:
        self._drain = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    # httptools callbacks

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length" or lowered == b"transfer-encoding":
            self._framed = True

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim answer: the real one follows
            self.reason, self.headers, self._framed = b"", [], False
            return
        self.status = status
        self._keep_alive = self._parser.should_keep_alive() and not self._close_after
        self.head_done = True
        if self._head_only:
            self.done = True
            self._keep_alive = False  # the parser would wait for a body a HEAD never gets
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status:
            self.done = True
            self._idle = self._keep_alive
            self._wake()

    # used by the transport

    def send(self, data: bytes, *, head_only: bool = False, close: bool = False) -> None:
        """Start a request: reset the response state and write `data` (head and body);
        `close` when the request itself says `Connection: close`."""
        assert self._transport is not None
        self.status, self.reason, self.headers = 0, b"", []
        self.head_done = self.done = self._framed = self._idle = False
        self._head_only = head_only
        self._close_after = close
        self._transport.write(data)

    def write(self, data: bytes) -> None:
        """More of the request's body; nothing once the connection is closed (the server
        may answer and close before reading it all: the answer is what is read next)."""
        assert self._transport is not None
        if not (self.closed or self._transport.is_closing()):
            self._transport.write(data)

    async def drain(self, within: float | None) -> None:
        """Wait, at most `timeout`, until the socket takes more bytes (TimeoutError if not)."""
        if self._drain is not None and not self._drain.done():
            await self._wait(self._drain, within)
        if self._error is not None:
            raise self._error

    async def read_head(self, within: float | None) -> None:
        """Wait until the status line and headers are in; the `read` within applies."""
        while not self.head_done:
            if self._error is not None:
                raise self._error
            await self._next(within)

    async def read_chunk(self, within: float | None) -> bytes | None:
        """The next body bytes, None at the end of the response."""
        while not self._chunks:
            if self.done:
                return None
            if self._error is not None:
                raise self._error
            await self._next(within)
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered <= _HIGH_WATER // 4 and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return chunk

    @property
    def reusable(self) -> bool:
        """Whether the connection may go back to the pool: the response read whole, and no
        `Connection: close` either way."""
        return not self.closed and self.done and self._keep_alive and not self._chunks

    def stale(self) -> bool:
        """Whether an idle connection can no longer be used: closed, or its socket readable
        (a server that closed it has left an EOF there; httpcore checks the same)."""
        if self.closed:
            return True
        assert self._transport is not None
        sock = self._transport.get_extra_info("socket")
        if sock is None:
            return False
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    # internals

    def _fail(self, error: Exception) -> None:
        self._error = error
        self.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _next(self, within: float | None) -> None:
        self._waiter = self._loop.create_future()
        try:
            await self._wait(self._waiter, within)
        finally:
            self._waiter = None

    async def _wait(self, future: asyncio.Future[None], within: float | None) -> None:
        await wait(self._loop, future, within)


async def wait(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[None], within: float | None
) -> None:
    """Await `future`, failing it with TimeoutError after `within` seconds: one timer handle,
    cheaper than `asyncio.wait_for`'s task or `asyncio.timeout`'s context per await."""
    if within is None:
        await future
        return
    timer = loop.call_later(within, _expire, future)
    try:
        await future
    finally:
        timer.cancel()


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())
