"""The app's access log: one line per HTTP request and WebSocket, with the request's
correlation id and caller, never a body or the Authorization header."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest
import structlog
from quart.testing.connections import WebsocketDisconnectError, WebsocketResponseError
from quart.typing import TestClientProtocol as Client

from services.llm_provider_service.logging_setup import ACCESS_LOGGER, log_formatter
from services.llm_provider_service.redaction import Redactor
from tests.integration.conftest import StartApp
from tests.support.callers import bearer, policy

COMPARISON = "/api/v1/comparison"
SECRET_ESSAY = "An essay no log line may show."
BODY: dict[str, Any] = {
    "user_prompt": "Which essay is better argued?",
    "essay_a": SECRET_ESSAY,
    "essay_b": "A loud assertion.",
    "processing_mode": "async",
}
KEY = "cj-access-log-key"


@pytest.fixture
async def client(start_app: StartApp) -> Client:
    return await start_app(callers={"cj_assessment": policy(KEY)}, worker_enabled=False)


def _access(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER]


def _rendered(record: logging.LogRecord) -> str:
    """The record as the JSON format writes it (the context is read when it is formatted,
    so this renders the fields the record itself carries)."""
    return log_formatter("json", Redactor()).format(record)


async def test_one_access_line_per_request_with_its_route_and_caller(
    client: Client, caplog: pytest.LogCaptureFixture
):
    correlation_id = str(uuid.uuid4())
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        response = await client.post(
            COMPARISON, json=BODY, headers=bearer(KEY) | {"X-Correlation-ID": correlation_id}
        )
        queued = (await response.get_json())["queue_id"]
        status = await client.get(f"/api/v1/status/{queued}", headers=bearer(KEY))

    assert response.status_code == 202
    first, second = _access(caplog)
    expected = {
        "method": "POST",
        "route": COMPARISON,
        "path": COMPARISON,
        "status": 202,
        "bytes": len(await response.get_data()),
    }
    assert {name: getattr(first, name, None) for name in expected} == expected
    assert first.duration_ms >= 0  # type: ignore[attr-defined]
    assert second.route == "/api/v1/status/<queue_id>"  # type: ignore[attr-defined]
    assert second.path == f"/api/v1/status/{queued}"  # type: ignore[attr-defined]
    assert second.status == status.status_code  # type: ignore[attr-defined]
    for record in (first, second):
        line = _rendered(record)
        assert KEY not in line
        assert SECRET_ESSAY not in line
        assert "Authorization" not in line


async def test_the_access_line_names_the_correlation_id_and_caller(
    client: Client, caplog: pytest.LogCaptureFixture
):
    correlation_id = str(uuid.uuid4())
    seen: list[dict[str, Any]] = []

    class Context(logging.Handler):
        """Reads the bound context while the line is logged, as the root handler does."""

        def emit(self, record: logging.LogRecord) -> None:
            seen.append(structlog.contextvars.get_contextvars())

    handler = Context()
    logging.getLogger(ACCESS_LOGGER).addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
            await client.post(
                COMPARISON, json=BODY, headers=bearer(KEY) | {"X-Correlation-ID": correlation_id}
            )
            await client.get("/healthz")
    finally:
        logging.getLogger(ACCESS_LOGGER).removeHandler(handler)

    request, probe = seen
    assert request["correlation_id"] == correlation_id
    assert request["caller"] == "cj_assessment"
    assert "caller" not in probe  # the next request starts from a clean context
    assert probe["correlation_id"] != correlation_id


async def test_a_websocket_has_its_access_line_whether_refused_or_accepted(
    client: Client, caplog: pytest.LogCaptureFixture
):
    response = await client.post(COMPARISON, json=BODY, headers=bearer(KEY))
    path = f"/api/v1/ws/status/{(await response.get_json())['queue_id']}"
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        with pytest.raises(WebsocketResponseError):
            async with client.websocket(path) as socket:
                await socket.receive()
        async with client.websocket(path, headers=bearer(KEY)) as socket:
            try:
                async with asyncio.timeout(0.3):  # a watcher of a queued request stays open
                    while True:
                        await socket.receive()
            except (WebsocketDisconnectError, TimeoutError):
                pass
        await asyncio.sleep(0)

    lines = [r for r in _access(caplog) if r.method == "WEBSOCKET"]  # type: ignore[attr-defined]
    assert [r.status for r in lines] == [401, 101]  # type: ignore[attr-defined]
    assert {r.path for r in lines} == {path}  # type: ignore[attr-defined]
