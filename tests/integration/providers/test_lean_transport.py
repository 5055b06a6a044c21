"""`LeanTransport` under an `httpx2.AsyncClient`, as the vendor SDKs use it, against a real
local server (`ScriptedServer`): reuse of keep-alive connections, the framings of a body,
the closes a server may do, and each failure as the httpx2 exception httpcore2 would raise
(the SDKs map those to their connection and timeout errors)."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
import uvloop

from services.llm_provider_service.providers.lean_transport import LeanTransport
from tests.support.scripted_http import Exchange, ScriptedServer, ok, response
from tests.support.tls_certificates import LocalCertificates, local_certificates


def client(
    server: ScriptedServer, *, max_connections: int = 4, **timeout: float
) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        base_url=server.url,
        transport=LeanTransport(max_connections=max_connections),
        timeout=httpx2.Timeout(5.0, **timeout),
    )


async def test_sequential_requests_share_one_keep_alive_connection() -> None:
    async with ScriptedServer() as server, client(server) as http:
        answers = [await http.post("/v1/x", content=b"body %d" % n) for n in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.content for a in answers] == [b"ok"] * 3
    assert server.connections == 1
    assert [e.body for e in server.exchanges] == [b"body 0", b"body 1", b"body 2"]
    assert server.exchanges[0].head.startswith(b"POST /v1/x HTTP/1.1\r\n")


async def test_a_streamed_request_body_is_sent_chunked() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"first,"
        yield b"second"

    async with ScriptedServer() as server, client(server) as http:
        answer = await http.post("/upload", content=parts())
    assert answer.status_code == 200
    assert server.exchanges[0].body == b"first,second"


async def test_a_chunked_response_is_read_whole() -> None:
    async def chunked(exchange: Exchange) -> None:
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        await exchange.answer(head + b"5\r\nhello\r\n")
        await exchange.answer(b"6\r\n world\r\n0\r\n\r\n")

    async with ScriptedServer(chunked) as server, client(server) as http:
        first = await http.get("/")
        second = await http.get("/")
    assert first.text == second.text == "hello world"
    assert server.connections == 1


async def test_a_gzip_response_is_decoded_by_httpx2() -> None:
    text = '{"answer": "zipped ✓"}' * 50
    packed = gzip.compress(text.encode())

    async def zipped(exchange: Exchange) -> None:
        await exchange.answer(response(packed, "Content-Encoding: gzip"))

    async with ScriptedServer(zipped) as server, client(server) as http:
        answer = await http.get("/")
    assert answer.text == text
    assert answer.headers["content-length"] == str(len(packed))


async def test_connection_close_is_honoured() -> None:
    async def closing(exchange: Exchange) -> None:
        await exchange.answer(response(b"bye", "Connection: close"), close=True)

    async with ScriptedServer(closing) as server, client(server) as http:
        answers = [(await http.get("/")).text for _ in range(2)]
    assert answers == ["bye", "bye"]
    assert server.connections == 2


async def test_an_idle_connection_the_server_closed_is_replaced_not_failed() -> None:
    """The server closes a pooled connection without saying so (an idle timeout)."""
    closed = asyncio.Event()

    async def close_after_answer(exchange: Exchange) -> None:
        await exchange.answer(response(b"ok"), close=True)
        closed.set()

    async with ScriptedServer(close_after_answer) as server, client(server) as http:
        first = await http.get("/")
        await closed.wait()
        second = await http.get("/")
    assert (first.text, second.text) == ("ok", "ok")
    assert server.connections == 2


async def test_a_refused_port_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with httpx2.AsyncClient(transport=LeanTransport(max_connections=1)) as http:
        with pytest.raises(httpx2.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")


async def test_a_server_that_never_answers_is_a_read_timeout() -> None:
    async def silent(exchange: Exchange) -> None:
        await asyncio.Event().wait()

    async with ScriptedServer(silent) as server, client(server, read=0.2) as http:
        with pytest.raises(httpx2.ReadTimeout):
            await http.get("/")


async def test_a_drop_mid_body_is_a_remote_protocol_error() -> None:
    async def drop(exchange: Exchange) -> None:
        await exchange.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", close=True)

    async with ScriptedServer(drop) as server, client(server) as http:
        with pytest.raises(httpx2.RemoteProtocolError):
            await http.get("/")


async def test_a_close_without_any_answer_is_a_remote_protocol_error() -> None:
    async def hang_up(exchange: Exchange) -> None:
        exchange.writer.close()

    async with ScriptedServer(hang_up) as server, client(server) as http:
        with pytest.raises(httpx2.RemoteProtocolError):
            await http.get("/")


async def test_a_malformed_response_is_a_remote_protocol_error() -> None:
    async def garbage(exchange: Exchange) -> None:
        await exchange.answer(b"HTTP/1.1 two hundred\r\n\r\n")

    async with ScriptedServer(garbage) as server, client(server) as http:
        with pytest.raises(httpx2.RemoteProtocolError):
            await http.get("/")


async def test_the_pool_limit_makes_requests_wait_then_time_out() -> None:
    release = asyncio.Event()

    async def held(exchange: Exchange) -> None:
        await release.wait()
        await ok(exchange)

    async with ScriptedServer(held) as server, client(server, max_connections=1) as http:
        first = asyncio.create_task(http.get("/first"))
        waiting = asyncio.create_task(http.get("/waiting"))
        await server.until(lambda s: bool(s.exchanges))
        with pytest.raises(httpx2.PoolTimeout):
            await http.get("/late", timeout=httpx2.Timeout(5.0, pool=0.1))
        release.set()
        answers = [(await first).text, (await waiting).text]
    assert answers == ["ok", "ok"]
    assert server.connections == 1
    assert [e.head.split(b" ")[1] for e in server.exchanges] == [b"/first", b"/waiting"]


async def test_a_cancelled_request_closes_its_connection() -> None:
    release = asyncio.Event()

    async def held_once(exchange: Exchange) -> None:
        if exchange.connection == 1:
            await release.wait()
        await ok(exchange)

    async with ScriptedServer(held_once) as server, client(server) as http:
        task = asyncio.create_task(http.get("/"))
        await server.until(lambda s: bool(s.exchanges))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        answer = await http.get("/")
        release.set()
    assert answer.text == "ok"
    assert server.connections == 2
    assert [e.connection for e in server.exchanges] == [1, 2]


async def test_aclose_closes_every_connection() -> None:
    async with ScriptedServer() as server:
        http = client(server)
        await asyncio.gather(*(http.get("/") for _ in range(3)))
        await http.aclose()
        await server.until(lambda s: s.closed_by_client == s.connections)
    assert server.connections == 3
    assert server.closed_by_client == 3


def test_it_runs_under_uvloop_as_serve_does() -> None:
    """`serve` runs on uvloop, whose transports are not `asyncio.Transport` instances."""

    async def two_requests() -> tuple[list[str], int]:
        async with ScriptedServer() as server, client(server) as http:
            texts = [(await http.get("/")).text for _ in range(2)]
        return texts, server.connections

    loop = uvloop.new_event_loop()
    try:
        texts, connections = loop.run_until_complete(two_requests())
    finally:
        loop.close()
    assert texts == ["ok", "ok"]
    assert connections == 1


@pytest.fixture
def certificates(tmp_path: Path) -> LocalCertificates:
    return local_certificates(tmp_path)


def server_tls(certificates: LocalCertificates) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.cert_file, certificates.key_file)
    return context


async def test_tls_is_verified_against_the_trusted_authorities_by_name(
    certificates: LocalCertificates,
) -> None:
    trusted = ssl.create_default_context(cafile=certificates.ca_file)
    transport = LeanTransport(max_connections=2, ssl_context=trusted)
    tls = server_tls(certificates)
    async with ScriptedServer(tls=tls) as server, httpx2.AsyncClient(transport=transport) as http:
        answers = [(await http.get(f"{server.url}/")).text for _ in range(2)]
    assert server.url.startswith("https://localhost:")
    assert answers == ["ok", "ok"]
    assert server.connections == 1


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "httpx2"])
async def test_by_default_an_unknown_authority_is_refused_as_httpx2_refuses_it(
    certificates: LocalCertificates, lean: bool
) -> None:
    """The default context is httpx2's own (certifi): a private CA's certificate fails the
    handshake, a `ConnectError` under either transport."""
    tls = server_tls(certificates)
    transport = LeanTransport(max_connections=1) if lean else httpx2.AsyncHTTPTransport()
    async with ScriptedServer(tls=tls) as server, httpx2.AsyncClient(transport=transport) as http:
        with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await http.get(f"{server.url}/")


async def test_a_scheme_other_than_http_is_unsupported_as_in_httpx2() -> None:
    async with httpx2.AsyncClient(transport=LeanTransport(max_connections=1)) as http:
        with pytest.raises(httpx2.UnsupportedProtocol):
            await http.get("ftp://127.0.0.1/")


async def test_an_idle_connection_past_the_keepalive_expiry_is_closed_not_reused() -> None:
    """As httpx2's default `Limits(keepalive_expiry=5.0)`: a connection idle longer is closed
    before a server's own idle timeout can race the next request on it."""
    transport = LeanTransport(max_connections=2, keepalive_expiry=0.0)
    async with ScriptedServer() as server, httpx2.AsyncClient(transport=transport) as http:
        answers = [(await http.get(f"{server.url}/")).text for _ in range(2)]
        await server.until(lambda s: s.closed_by_client == 1)
    assert answers == ["ok", "ok"]
    assert server.connections == 2
    assert LeanTransport(max_connections=1).keepalive_expiry == 5.0
