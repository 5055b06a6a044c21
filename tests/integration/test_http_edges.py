"""The HTTP edges over real HTTP (Hypercorn on a socket): metric labels from closed sets,
depth-limited bodies, and the one error shape for every status the service or its server
layer answers with."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from quart.typing import TestClientProtocol as Client
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from services.llm_provider_service.api.parsing import MAX_JSON_DEPTH
from services.llm_provider_service.metrics import ServiceMetrics
from tests.conftest import SettingsFactory
from tests.support.callers import policy
from tests.support.served_app import HOST, ServedApp, served_app

COMPARISON = "/api/v1/comparison"
VALID: dict[str, Any] = {
    "user_prompt": "Which essay argues its thesis better?",
    "essay_a": "Essay A argues carefully, with evidence.",
    "essay_b": "Essay B asserts loudly, without evidence.",
    "processing_mode": "immediate",
}
JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
async def served(make_settings: SettingsFactory) -> AsyncIterator[ServedApp]:
    async with served_app(make_settings(worker_enabled=False)) as app:
        yield app


@pytest.fixture
async def http(served: ServedApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.base_url, timeout=30.0) as client:
        yield client


def assert_error_body(
    status: int, headers: dict[str, str], raw: bytes, expected_status: int, code: str
) -> dict[str, Any]:
    """The one error shape: `{"error": {code, message, correlation_id, details}}`, as JSON,
    with the correlation id also in `X-Correlation-ID`."""
    assert status == expected_status, raw
    assert headers["content-type"].startswith("application/json"), headers
    payload = json.loads(raw)
    assert set(payload) == {"error"}
    error: dict[str, Any] = payload["error"]
    assert set(error) == {"code", "message", "correlation_id", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"].strip()
    assert isinstance(error["details"], dict)
    uuid.UUID(error["correlation_id"])
    assert error["correlation_id"] == headers["x-correlation-id"]
    return error


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in response.headers.items()}
    return assert_error_body(response.status_code, headers, response.content, status, code)


async def raw_exchange(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `data` on a fresh connection and read one response: its head, then as many
    body bytes as its Content-Length says (all until the server closes, without one)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(20):
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").strip().split("\r\n")
            headers = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "content-length" in headers:
                body = await reader.readexactly(int(headers["content-length"]))
            else:
                body = await reader.read()
    finally:
        writer.close()
    return int(status_line.split()[1]), headers, body


# ---- 1. metric labels come from closed sets ------------------------------------------------


def http_series(text: str) -> dict[str, set[tuple[str, ...]]]:
    """The label sets of the three request-labelled HTTP metrics in a `/metrics` text."""
    wanted = {
        "llm_provider_http_requests_total": ("method", "route", "status"),
        "llm_provider_http_request_duration_seconds_count": ("method", "route"),
        "llm_provider_service_overhead_seconds_count": ("route",),
    }
    series: dict[str, set[tuple[str, ...]]] = {name: set() for name in wanted}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                series[sample.name].add(tuple(sample.labels[k] for k in wanted[sample.name]))
    return series


async def test_made_up_methods_and_paths_leave_the_metric_series_a_closed_set(
    served: ServedApp, http: httpx.AsyncClient
):
    made_up = [f"FLOOD{i}" for i in range(2000)] + ["M" * 4000]
    for method in made_up:
        response = await http.request(method, "/healthz")
        assert_error(response, 405, "METHOD_NOT_ALLOWED")
    for i in range(300):
        response = await http.get(f"/nothing/{i}/{uuid.uuid4()}")
        assert_error(response, 404, "NOT_FOUND")

    text = (await http.get("/metrics")).text

    assert http_series(text) == {
        "llm_provider_http_requests_total": {
            ("GET", "/healthz", "200"),  # served_app waits for /healthz before yielding
            ("OTHER", "unmatched", "405"),
            ("GET", "unmatched", "404"),
        },
        "llm_provider_http_request_duration_seconds_count": {
            ("GET", "/healthz"),
            ("OTHER", "unmatched"),
            ("GET", "unmatched"),
        },
        "llm_provider_service_overhead_seconds_count": {("/healthz",), ("unmatched",)},
    }
    assert "FLOOD" not in text


class ThreadRecorder:
    """A collector that records the thread each scrape collects it in."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def collect(self) -> Iterable[Metric]:
        self.threads.append(threading.get_ident())
        yield GaugeMetricFamily("llm_provider_test_probe", "Where the scrape ran.", value=1)


async def test_metrics_text_is_built_outside_the_event_loop(
    served: ServedApp, http: httpx.AsyncClient
):
    recorder = ThreadRecorder()
    (await served.container.get(ServiceMetrics)).registry.register(recorder)

    response = await http.get("/metrics")

    assert response.status_code == 200
    assert "llm_provider_test_probe 1.0" in response.text
    assert recorder.threads
    assert threading.get_ident() not in recorder.threads  # the loop's thread never builds it


# ---- 2. deeply nested JSON is a 400, refused before parsing, without a traceback ----------


def nested_metadata(depth: int) -> bytes:
    """A valid comparison body whose deepest container is `depth` levels down (the body
    itself is level 1, `metadata` level 2)."""
    inner: Any = {}
    for _ in range(depth - 2):
        inner = {"a": inner}
    return json.dumps({**VALID, "metadata": inner}).encode()


DEEP_BODIES = {
    "1000_brackets": b"[" * 1000,
    "100000_brackets": b"[" * 100_000,
    "1000_objects": b'{"a":' * 1000,
    "1000_brackets_closed": b"[" * 1000 + b"]" * 1000,
    "one_level_too_deep": nested_metadata(MAX_JSON_DEPTH + 1),
}


@pytest.mark.parametrize("raw", list(DEEP_BODIES.values()), ids=list(DEEP_BODIES))
async def test_deeply_nested_json_is_a_400_without_a_traceback(
    client: Client, caplog: pytest.LogCaptureFixture, raw: bytes
):
    correlation_id = str(uuid.uuid4())
    with caplog.at_level(logging.DEBUG):
        response = await client.post(
            COMPARISON, data=raw, headers={**JSON_HEADERS, "X-Correlation-ID": correlation_id}
        )

    assert response.status_code == 400, await response.get_data(as_text=True)
    error = (await response.get_json())["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["correlation_id"] == correlation_id
    assert error["details"] == {"reason": "too_deeply_nested", "max_depth": MAX_JSON_DEPTH}
    assert str(MAX_JSON_DEPTH) in error["message"]
    assert [r for r in caplog.records if r.exc_info] == []


async def test_body_nested_exactly_to_the_limit_is_served(client: Client):
    response = await client.post(
        COMPARISON, data=nested_metadata(MAX_JSON_DEPTH), headers=JSON_HEADERS
    )

    assert response.status_code == 200, await response.get_data(as_text=True)
    metadata = (await response.get_json())["metadata"]
    depth = 2
    while metadata:
        metadata = metadata["a"]
        depth += 1
    assert depth == MAX_JSON_DEPTH


async def test_brackets_inside_strings_do_not_count_as_nesting(client: Client):
    prompt = "[" * 5000 + '{"\\"[' * 100
    raw = json.dumps({**VALID, "user_prompt": prompt}).encode()

    response = await client.post(COMPARISON, data=raw, headers=JSON_HEADERS)

    assert response.status_code == 200, await response.get_data(as_text=True)


# ---- 3. every status of the service and its server layer has the one error shape ----------


async def test_unsupported_content_type_is_415(http: httpx.AsyncClient):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = await http.post(
            COMPARISON, content=json.dumps(VALID), headers={"Content-Type": content_type}
        )
        error = assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
        assert error["details"]["content_type"] == content_type


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "application/json; charset=utf-8", "application/vnd.api+json"],
)
async def test_json_content_types_and_a_missing_one_are_accepted(
    http: httpx.AsyncClient, content_type: str | None
):
    headers = {"Content-Type": content_type} if content_type else {}
    request = http.build_request("POST", COMPARISON, content=json.dumps(VALID), headers=headers)
    assert request.headers.get("content-type") == content_type

    response = await http.send(request)

    assert response.status_code == 200, response.text


async def test_wrong_method_is_405_with_allow(http: httpx.AsyncClient):
    for method, path, allowed in (
        ("DELETE", COMPARISON, {"POST", "OPTIONS"}),
        ("PATCH", "/healthz", {"GET", "HEAD", "OPTIONS"}),
        ("BREW", COMPARISON, {"POST", "OPTIONS"}),
    ):
        response = await http.request(method, path)
        assert_error(response, 405, "METHOD_NOT_ALLOWED")
        allow = {m.strip() for m in response.headers["Allow"].split(",")}
        assert allow == allowed


async def test_unknown_route_is_404_over_http(http: httpx.AsyncClient):
    assert_error(await http.get("/api/v1/nothing-here"), 404, "NOT_FOUND")


async def test_body_over_the_limit_is_413_over_http(make_settings: SettingsFactory):
    settings = make_settings(worker_enabled=False, max_request_body_bytes=1024)
    raw = json.dumps({**VALID, "user_prompt": "x" * 4096})
    async with served_app(settings) as served, httpx.AsyncClient(base_url=served.base_url) as http:
        response = await http.post(COMPARISON, content=raw, headers=JSON_HEADERS)

    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


async def test_body_that_does_not_arrive_in_time_is_408(served: ServedApp):
    served.app.config["BODY_TIMEOUT"] = 0.2  # Quart's body timeout, normally 60 s
    head = (
        f"POST {COMPARISON} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n"
    )

    status, headers, body = await raw_exchange(served.port, head.encode() + b'{"user_')

    assert_error_body(status, headers, body, 408, "REQUEST_TIMEOUT")


SERVER_LAYER_CASES: dict[str, tuple[bytes, int, str]] = {
    "headers_too_large": (
        b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: " + b"x" * (20 * 1024),
        431,
        "HEADERS_TOO_LARGE",
    ),
    "malformed_header_line": (
        b"GET /healthz HTTP/1.1\r\nHost test\r\n\r\n",
        400,
        "BAD_REQUEST",
    ),
    "not_http": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "BAD_REQUEST"),
    "websocket_handshake_without_key": (
        b"GET /api/v1/ws/status/x HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\n\r\n",
        400,
        "BAD_REQUEST",
    ),
    "unsupported_transfer_encoding": (
        b"POST /api/v1/comparison HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
        "NOT_IMPLEMENTED",
    ),
}


@pytest.mark.parametrize(
    ("raw", "status", "code"), list(SERVER_LAYER_CASES.values()), ids=list(SERVER_LAYER_CASES)
)
async def test_server_layer_errors_have_the_error_shape(
    served: ServedApp, raw: bytes, status: int, code: str
):
    got_status, headers, body = await raw_exchange(served.port, raw)

    assert_error_body(got_status, headers, body, status, code)
    assert headers["connection"] == "close"


async def test_websocket_error_carries_a_correlation_id(served: ServedApp):
    async with connect(f"{served.ws_url}/api/v1/ws/status/not-a-uuid") as socket:
        fresh = json.loads(await socket.recv())["error"]
    correlation_id = str(uuid.uuid4())
    async with connect(
        f"{served.ws_url}/api/v1/ws/status/{uuid.uuid4()}",
        additional_headers={"X-Correlation-ID": correlation_id},
    ) as socket:
        echoed = json.loads(await socket.recv())["error"]

    assert fresh["code"] == "VALIDATION_ERROR"
    uuid.UUID(fresh["correlation_id"])
    assert echoed["code"] == "NOT_FOUND"
    assert echoed["correlation_id"] == correlation_id


async def test_refused_websocket_handshake_carries_a_correlation_id(
    make_settings: SettingsFactory,
):
    settings = make_settings(worker_enabled=False, callers={"cj": policy("cj-key")})
    correlation_id = str(uuid.uuid4())
    async with served_app(settings) as served:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                f"{served.ws_url}/api/v1/ws/status/{uuid.uuid4()}",
                additional_headers={"X-Correlation-ID": correlation_id},
            ):
                pass

    response = refused.value.response
    headers = {k.lower(): v for k, v in response.headers.raw_items()}
    error = assert_error_body(
        response.status_code, headers, bytes(response.body), 401, "UNAUTHORIZED"
    )
    assert error["correlation_id"] == correlation_id


async def test_answer_before_the_body_arrived_says_the_connection_closes(served: ServedApp):
    # Refused before its body is read (415 is decided on the headers), the request's body
    # is still on its way: Hypercorn then closes the connection, so the answer must say so,
    # or a keep-alive client sends its next request into a closed connection.
    reader, writer = await asyncio.open_connection(HOST, served.port)
    try:
        writer.write(
            f"POST {COMPARISON} HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\n"
            "Content-Length: 10\r\n\r\n".encode()
        )
        await writer.drain()
        async with asyncio.timeout(20):
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
            assert head.startswith("http/1.1 415"), head
            assert "\r\nconnection: close\r\n" in head, head
            length = int(head.split("content-length:")[1].split("\r\n")[0])
            await reader.readexactly(length)
            assert await reader.read() == b""  # closed, as announced
    finally:
        writer.close()
