"""Reading a request and writing a response on an h11 connection (asyncio streams)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import h11


async def write_response(
    conn: h11.Connection,
    writer: asyncio.StreamWriter,
    status: int,
    content_type: str,
    body: bytes,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    """One whole response on the connection."""
    fields = [("content-type", content_type), ("content-length", str(len(body))), *headers]
    writer.write(conn.send(h11.Response(status_code=status, headers=fields)))
    writer.write(conn.send(h11.Data(data=body)))
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()


async def read_request(
    conn: h11.Connection, reader: asyncio.StreamReader
) -> tuple[h11.Request, bytes] | None:
    """The next whole request on the connection, or None once the client has closed it."""
    request: h11.Request | None = None
    chunks: list[bytes] = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            return request, b"".join(chunks)
        else:  # ConnectionClosed, or PAUSED after a client that wants the connection closed
            return None
