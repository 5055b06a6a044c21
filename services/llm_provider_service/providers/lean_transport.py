"""`LeanTransport`: the socket layer under the vendor SDKs' `httpx2.AsyncClient` (OpenAI,
OpenRouter, Anthropic), in place of httpcore2.

The SDK still builds every request and reads every response (headers, auth, JSON, gzip and
deflate decoding stay httpx2's); only the socket work moves here (`lean_connection.py`).
httpcore2 (anyio streams, h11 in pure Python, its pool's bookkeeping) was the largest slice
of the service's CPU per request (benchmarks/profiles/README.md).

What stays as httpcore2 does it, because the SDKs and the service depend on it:

- a keep-alive pool per origin (scheme, host, port), at most `max_connections` each
  (`lean_pool.py`); an idle connection the server has closed, or idle past the keep-alive
  expiry, is dropped at checkout and another used or opened, never failing the request;
- a host's addresses tried as anyio does (`lean_connect.py`, "Happy Eyeballs");
- TLS verified as httpx2 does (`httpx2.create_ssl_context()`), SNI the URL's host;
- the timeouts of `request.extensions["timeout"]` and the exceptions: a refused, unreachable
  or unresolvable host is `ConnectError`; connect, read, write and pool waits past their
  timeout `ConnectTimeout`, `ReadTimeout`, `WriteTimeout`, `PoolTimeout`; a server that
  closes before a complete response, or answers with bytes that are not HTTP/1.1,
  `RemoteProtocolError` (a reset connection `ReadError`): the SDKs make these
  `APIConnectionError` / `APITimeoutError`, and the service `ProviderUnavailableError` /
  `ProviderTimeoutError`;
- a cancelled request (the service's `asyncio.timeout`) closes its connection.

Proxies: httpx2 ignores the proxy variables given a transport: `vendor_http.py` checks.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence
from typing import Any, NoReturn

import httpx2

from services.llm_provider_service.providers.lean_connect import open_socket
from services.llm_provider_service.providers.lean_connection import (
    ConnectionLostError,
    LeanConnection,
    ParseError,
    wait,
)
from services.llm_provider_service.providers.lean_pool import OriginPool

Origin = tuple[str, str, int]
SocketOption = tuple[int, int, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}


class LeanTransport(httpx2.AsyncBaseTransport):
    """HTTP/1.1 over pooled keep-alive connections; see the module's docstring."""

    def __init__(
        self,
        *,
        max_connections: int,
        ssl_context: ssl.SSLContext | None = None,
        socket_options: Sequence[SocketOption] = (),
        keepalive_expiry: float = 5.0,
    ) -> None:
        """`socket_options` are set on every new socket (the Anthropic SDK's own stack sets
        TCP keep-alive probes: `vendor_http.py` passes the same); `keepalive_expiry` is
        httpx2's default: idle connections older are closed, not reused."""
        self.keepalive_expiry = keepalive_expiry
        self._max = max_connections
        self._ssl = ssl_context
        self._socket_options = tuple(socket_options)
        self._pools: dict[Origin, OriginPool] = {}
        self._closed = False

    @property
    def max_connections(self) -> int:  # the most connections open at once to one origin
        return self._max

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx2.UnsupportedProtocol(f"Unsupported URL scheme {scheme!r}", request=request)
        origin = (scheme, url.raw_host.decode("ascii"), url.port or _DEFAULT_PORTS[scheme])
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = OriginPool(self.keepalive_expiry)
        conn = await self._checkout(pool, origin, timeouts, request)
        try:
            await self._send(conn, request, timeouts)
            await conn.read_head(timeouts.get("read"))
        except BaseException as exc:
            pool.discard(conn)
            _reraise(exc, request, "read")
        return httpx2.Response(
            conn.status,
            headers=conn.headers,
            stream=_Body(conn, pool, timeouts.get("read"), request),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": conn.reason},
        )

    async def aclose(self) -> None:
        self._closed = True  # requests waiting for a connection leave, and open none
        for pool in self._pools.values():
            pool.close()

    def _is_closed(self) -> bool:  # not narrowed by mypy: `aclose` runs during awaits
        return self._closed

    def _refuse_if_closed(self, request: httpx2.Request) -> None:
        if self._closed:
            raise httpx2.ConnectError("The transport is closed", request=request)

    async def _checkout(
        self,
        pool: OriginPool,
        origin: Origin,
        timeouts: dict[str, float | None],
        request: httpx2.Request,
    ) -> LeanConnection:
        loop = asyncio.get_running_loop()
        deadline = None
        while True:
            self._refuse_if_closed(request)
            idle = pool.take_idle()
            if idle is not None:
                return idle
            if pool.count < self._max:
                pool.count += 1
                try:
                    conn = await self._connect(loop, origin, timeouts.get("connect"))
                except BaseException as exc:
                    pool.count -= 1
                    pool.wake()
                    _reraise(exc, request, "connect")
                if self._is_closed():  # closed while this one connected
                    pool.count -= 1
                    conn.close()
                    self._refuse_if_closed(request)
                pool.live.add(conn)
                return conn
            timeout = timeouts.get("pool")
            if timeout is not None:
                deadline = deadline or loop.time() + timeout
                timeout = max(deadline - loop.time(), 0.0)
            waiter: asyncio.Future[None] = loop.create_future()
            pool.waiters.append(waiter)
            try:
                await wait(loop, waiter, timeout)
            except BaseException as exc:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    pool.wake()  # woken, but leaving: pass the free connection on
                if isinstance(exc, TimeoutError):
                    message = "No connection free in time"
                    raise httpx2.PoolTimeout(message, request=request) from None
                raise
            finally:
                if not waiter.done():
                    waiter.cancel()

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, origin: Origin, within: float | None
    ) -> LeanConnection:
        scheme, host, port = origin
        context = self._tls() if scheme == "https" else None
        conn = LeanConnection(loop)
        async with asyncio.timeout(within):
            sock = await open_socket(loop, host, port)
            try:
                for level, option, value in self._socket_options:
                    sock.setsockopt(level, option, value)
                tls: dict[str, Any] = {}
                if context is not None:
                    # The handshake within the connect timeout, as httpcore2 bounds it (the
                    # loops' own default is 60 s, and would be a ConnectError, not a timeout).
                    tls = {"ssl": context, "server_hostname": host}
                    if within is not None:
                        tls["ssl_handshake_timeout"] = max(within, 0.001)
                await loop.create_connection(lambda: conn, sock=sock, **tls)
            except BaseException:
                sock.close()
                raise
        return conn

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx2.create_ssl_context()
            self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl

    async def _send(
        self, conn: LeanConnection, request: httpx2.Request, timeouts: dict[str, float | None]
    ) -> None:
        parts = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
        chunked = close = False
        for name, value in request.headers.raw:
            parts += (name, b": ", value, b"\r\n")
            lowered = name.lower()
            if lowered == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif lowered == b"connection":
                close = b"close" in value.lower()
        parts.append(b"\r\n")
        try:
            body: bytes | None = request.content
        except httpx2.RequestNotRead:
            body = None
        if body is not None and chunked:  # read already (an auth flow, a hook): still framed
            parts.append(b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n")
        elif body is not None:
            parts.append(body)
        head_only = request.method == "HEAD"
        conn.send(b"".join(parts), head_only=head_only, close=close)
        write = timeouts.get("write")
        try:
            await conn.drain(write)
            if body is None:
                assert isinstance(request.stream, httpx2.AsyncByteStream)
                await _send_stream(conn, request.stream, chunked=chunked, within=write)
        except TimeoutError:
            raise httpx2.WriteTimeout("Timed out sending the request", request=request) from None


async def _send_stream(
    conn: LeanConnection, stream: httpx2.AsyncByteStream, *, chunked: bool, within: float | None
) -> None:
    """A streamed request body (a file upload), chunk-framed when the request says so."""
    async for chunk in stream:
        if conn.closed or conn.done:
            # The server answered (a 413, a 401) and may have closed before the whole body
            # was sent: its answer is what is read next, as httpcore2 does.
            return
        if chunk:
            conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            await conn.drain(within)
    if chunked and not (conn.closed or conn.done):
        conn.write(b"0\r\n\r\n")
        await conn.drain(within)


class _Body(httpx2.AsyncByteStream):
    """The response body as it arrives; the connection goes back to the pool once the body
    was read whole, and is closed if it was not (an error, a cancellation, an early close)."""

    def __init__(
        self, conn: LeanConnection, pool: OriginPool, within: float | None, request: httpx2.Request
    ) -> None:
        self._conn: LeanConnection | None = conn
        self._pool = pool
        self._timeout = within
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        try:
            while (chunk := await conn.read_chunk(self._timeout)) is not None:
                yield chunk
        except BaseException as exc:
            self._end(keep=False)
            _reraise(exc, self._request, "read")
        self._end(keep=True)

    async def aclose(self) -> None:
        self._end(keep=True)

    def _end(self, *, keep: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if keep:
            self._pool.release(conn)  # closes it unless the response was read whole
        else:
            self._pool.discard(conn)


def _reraise(exc: BaseException, request: httpx2.Request, phase: str) -> NoReturn:
    mapped = _mapped(exc, request, phase)
    if mapped is exc:
        raise exc
    raise mapped from exc


def _mapped(exc: BaseException, request: httpx2.Request, phase: str) -> BaseException:
    """`exc` as httpcore2 (through httpx2) reports it; anything else (cancellation, httpx2's
    own errors) unchanged."""
    if isinstance(exc, httpx2.HTTPError):
        return exc
    if isinstance(exc, TimeoutError):
        timeout = httpx2.ConnectTimeout if phase == "connect" else httpx2.ReadTimeout
        return timeout(f"Timed out ({phase})", request=request)
    if phase == "connect" and isinstance(exc, OSError):
        return httpx2.ConnectError(str(exc) or type(exc).__name__, request=request)
    if isinstance(exc, ConnectionLostError):
        lost = httpx2.ReadError if exc.reset else httpx2.RemoteProtocolError
        return lost(str(exc), request=request)
    if isinstance(exc, ParseError):
        return httpx2.RemoteProtocolError(str(exc), request=request)
    if isinstance(exc, OSError):
        return httpx2.ReadError(str(exc) or type(exc).__name__, request=request)
    return exc
