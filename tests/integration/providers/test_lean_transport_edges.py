"""`LeanTransport` where a review found it behind httpcore2: a host whose first address drops
packets, a server that answers an upload before reading it and closes, `aclose` while
requests wait for a connection, a pre-read body under chunked framing, and a certificate
for another name."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvloop

from services.llm_provider_service.providers.lean_transport import LeanTransport
from tests.support.scripted_http import Exchange, ScriptedServer
from tests.support.tls_certificates import local_certificates


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port whose SYNs are dropped: a listener with a full accept queue, so a connect to
    it hangs (as to an address on a broken route) instead of being refused."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    port = int(hole.getsockname()[1])
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):  # in progress: it will never finish
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        hole.close()


def resolving(loop: asyncio.AbstractEventLoop, name: str, addresses: list[tuple[str, int]]) -> None:
    """Make `name` resolve to `addresses`, in that order, on `loop`."""
    real = loop.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == name:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", a) for a in addresses]
        return await real(host, port, *args, **kwargs)

    loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign]


async def test_a_first_address_that_drops_packets_does_not_cost_the_connect_timeout(
    black_hole: int,
) -> None:
    async with ScriptedServer() as server:
        port = int(server.url.rsplit(":", 1)[1])
        resolving(
            asyncio.get_running_loop(),
            "dual.test",
            [("127.0.0.1", black_hole), ("127.0.0.1", port)],
        )
        transport = LeanTransport(max_connections=1)
        async with httpx2.AsyncClient(transport=transport, timeout=3.0) as http:
            answer = await http.get(f"http://dual.test:{port}/")
    assert (answer.status_code, answer.text) == (200, "ok")


async def test_a_host_none_of_whose_addresses_answers_is_a_connect_timeout(
    black_hole: int,
) -> None:
    resolving(asyncio.get_running_loop(), "holes.test", [("127.0.0.1", black_hole)] * 2)
    transport = LeanTransport(max_connections=1)
    async with httpx2.AsyncClient(transport=transport, timeout=0.8) as http:
        with pytest.raises(httpx2.ConnectTimeout):
            await http.get(f"http://holes.test:{black_hole}/")


async def _early_answer_server() -> tuple[asyncio.Server, int]:
    """Answers 413 after the request's head, closing without reading the body."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\n")
        writer.write(b"Connection: close\r\n\r\nbig")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


async def _upload_answered_early() -> int:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(200):
            yield b"x" * 65536
            await asyncio.sleep(0.001)

    server, port = await _early_answer_server()
    try:
        transport = LeanTransport(max_connections=1)
        async with httpx2.AsyncClient(transport=transport, timeout=5.0) as http:
            answer = await http.post(f"http://127.0.0.1:{port}/v1/files", content=body())
        return answer.status_code
    finally:
        server.close()


async def test_an_upload_answered_and_closed_before_it_is_sent_whole_gets_the_answer() -> None:
    assert await _upload_answered_early() == 413


def test_an_upload_answered_early_gets_the_answer_under_uvloop_too() -> None:
    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(_upload_answered_early()) == 413
    finally:
        loop.close()


async def test_aclose_turns_away_the_requests_waiting_for_a_connection() -> None:
    release = asyncio.Event()

    async def slow(exchange: Exchange) -> None:
        await release.wait()
        await exchange.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    transport = LeanTransport(max_connections=1)
    async with ScriptedServer(slow) as server:
        http = httpx2.AsyncClient(base_url=server.url, transport=transport, timeout=5.0)
        holding = asyncio.create_task(http.get("/first"))
        await asyncio.sleep(0.2)
        waiting = asyncio.create_task(http.get("/second"))
        await asyncio.sleep(0.2)
        await transport.aclose()
        with pytest.raises(httpx2.ConnectError, match="closed"):
            await waiting
        with pytest.raises(httpx2.HTTPError):
            await holding
        release.set()
        await http.aclose()
    pools = list(transport._pools.values())
    assert [(pool.count, len(pool.live)) for pool in pools] == [(0, 0)]
    assert server.connections == 1


async def test_a_body_read_before_sending_still_goes_chunked_when_the_request_says_so() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b"world"

    async with ScriptedServer() as server:
        transport = LeanTransport(max_connections=1)
        async with httpx2.AsyncClient(base_url=server.url, transport=transport) as http:
            request = http.build_request("POST", "/upload", content=parts())
            await request.aread()  # as an auth flow that needs the body does
            answer = await http.send(request)
    assert answer.status_code == 200
    assert b"transfer-encoding: chunked" in server.exchanges[0].head.lower()
    assert server.exchanges[0].body == b"hello world"


async def test_a_certificate_for_another_name_is_refused(tmp_path: Path) -> None:
    certificates = local_certificates(tmp_path)  # for localhost and 127.0.0.1 only
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(certificates.cert_file, certificates.key_file)
    trusted = ssl.create_default_context(cafile=certificates.ca_file)
    async with ScriptedServer(tls=served) as server:
        port = int(server.url.rsplit(":", 1)[1])
        resolving(asyncio.get_running_loop(), "other.test", [("127.0.0.1", port)])
        transport = LeanTransport(max_connections=1, ssl_context=trusted)
        async with httpx2.AsyncClient(transport=transport) as http:
            with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get(f"https://other.test:{port}/")
