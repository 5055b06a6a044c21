"""The HTTP edges over real HTTP (Hypercorn on a socket): metric labels from closed sets,
depth-limited bodies, and the one error shape for every status the service or its server
layer answers with."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from services.llm_provider_service.metrics import ServiceMetrics
from tests.conftest import SettingsFactory
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
    """Send `data` on a fresh connection and read one response until the server closes."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(20):
            raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(body)))
    return int(status_line.split()[1]), headers, body[:length]


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
