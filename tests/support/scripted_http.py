"""A local HTTP/1.1 server whose every answer a test scripts, for the vendor SDKs' transport
(`providers/lean_transport.py`): it counts the connections it accepts and records each
request, so that a test can see keep-alive reuse, closes and drops from the server's side."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Reply = Callable[["Exchange"], Awaitable[None]]


@dataclass
class Exchange:
    """One request as the server read it, and the connection to answer on."""

    head: bytes
    body: bytes
    writer: asyncio.StreamWriter
    connection: int
    """Which accepted connection (1, 2, ...) it came on."""

    async def answer(self, raw: bytes, *, close: bool = False) -> None:
        self.writer.write(raw)
        await self.writer.drain()
        if close:
            self.writer.close()
            await self.writer.wait_closed()


@dataclass
class ScriptedServer:
    """Answers each request with `reply(exchange)`; `ok` by default."""

    reply: Reply | None = None
    tls: ssl.SSLContext | None = None
    """Serves HTTPS with this context, its URL naming `localhost` (for the certificate)."""
    connections: int = 0
    exchanges: list[Exchange] = field(default_factory=list)
    closed_by_client: int = 0
    """Connections on which the client closed its side (EOF while waiting for a request)."""
    _server: asyncio.Server | None = None
    _port: int = 0
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, condition: Callable[[ScriptedServer], bool]) -> None:
        """Wait until `condition(self)` holds (checked whenever the server sees something)."""
        while not condition(self):
            self._changed.clear()
            await self._changed.wait()

    @property
    def url(self) -> str:
        port = self._port
        return f"https://localhost:{port}" if self.tls else f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        number = self.connections
        try:
            while not writer.is_closing():
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed_by_client += 1
                    self._changed.set()
                    return
                body = await _read_body(reader, head)
                exchange = Exchange(head, body, writer, number)
                self.exchanges.append(exchange)
                self._changed.set()
                await (self.reply or ok)(exchange)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def _read_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    lines = head.lower().split(b"\r\n")
    for line in lines:
        if line.startswith(b"content-length:"):
            return await reader.readexactly(int(line.split(b":")[1]))
    if b"transfer-encoding: chunked" in lines:
        body = b""
        while size := int((await reader.readuntil(b"\r\n"))[:-2], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
        return body
    return b""


def response(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    """A whole response with a Content-Length and the given extra header lines."""
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def ok(exchange: Exchange) -> None:
    await exchange.answer(response(b"ok"))
