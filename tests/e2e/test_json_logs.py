"""`python -m services.llm_provider_service serve` with LOG_FORMAT=json: every line it writes
is one JSON object, every request has its access line, and a line logged during a request
names the request's correlation id, caller and provider."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.callers import bearer, callers_env, policy
from tests.support.processes import ProcessPool, ServiceProcess, poll_until
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

COMPARISON = "/api/v1/comparison"
BODY: dict[str, Any] = {
    "user_prompt": "Which essay is better argued?",
    "essay_a": "A careful argument.",
    "essay_b": "A loud assertion.",
    "processing_mode": "immediate",
}
CALLER_KEY, ADMIN_KEY = "cj-assessment-log-key", "ops-log-key"
CALLERS = {"cj_assessment": policy(CALLER_KEY), "ops": policy(ADMIN_KEY, admin=True)}
VENDOR_KEY = "sk-test-logs-0123456789abcdef"


@pytest.fixture
def served(redis_server: RedisServer, tmp_path: Path) -> Iterator[ServiceProcess]:
    pool = ProcessPool(tmp_path, redis_server.url, prefix=f"logs{uuid.uuid4().hex[:8]}")
    try:
        yield pool.start(
            "serve",
            "serve",
            log_format="json",
            callers=callers_env(CALLERS),
            openai_api_key=VENDOR_KEY,  # configured, so every line must keep it out
        )
    finally:
        pool.close()


def _json_lines(process: ServiceProcess) -> list[dict[str, Any]]:
    """Every line of the process's stdout and stderr, each parsed as JSON (fails otherwise)."""
    lines = []
    for number, line in enumerate(process.text().splitlines(), start=1):
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"line {number} is not JSON: {line!r}") from exc
        assert isinstance(parsed, dict), line
        lines.append(parsed)
    return lines


async def test_every_line_is_json_with_one_access_line_per_request(served: ServiceProcess):
    await served.wait_ready(within=45)
    ok, failing, refused = (str(uuid.uuid4()) for _ in range(3))
    async with httpx.AsyncClient(base_url=served.base_url, timeout=10) as client:
        answered = await client.post(
            COMPARISON, json=BODY, headers=bearer(CALLER_KEY) | {"X-Correlation-ID": ok}
        )
        assert answered.status_code == 200, answered.text
        drill = await client.post(
            "/api/v1/dev/mock-fault",
            json={"error_rate": 1.0, "error_kind": "server_error"},
            headers=bearer(ADMIN_KEY),
        )
        assert drill.status_code == 200, drill.text
        failed = await client.post(
            COMPARISON, json=BODY, headers=bearer(CALLER_KEY) | {"X-Correlation-ID": failing}
        )
        assert failed.status_code >= 500, failed.text
        unauthorized = await client.post(
            COMPARISON, json=BODY, headers=bearer("not-a-key") | {"X-Correlation-ID": refused}
        )
        assert unauthorized.status_code == 401

    await served.wait_for_log(f'"correlation_id": "{refused}"', within=10)
    lines = _json_lines(served)

    for line in lines:
        assert {"timestamp", "level", "logger", "event"} <= line.keys(), line
        assert line["timestamp"].endswith("Z"), line  # ISO 8601, UTC
    assert any(line["logger"] == "hypercorn.error" for line in lines), "the server's own lines"
    assert VENDOR_KEY not in served.text()

    access = [line for line in lines if line["logger"] == "llm_provider_service.access"]
    by_id = {cid: [a for a in access if a.get("correlation_id") == cid] for cid in (ok, failing)}
    for cid, status in ((ok, answered.status_code), (failing, failed.status_code)):
        assert len(by_id[cid]) == 1, access
        (line,) = by_id[cid]
        assert line["method"] == "POST"
        assert line["route"] == COMPARISON
        assert line["path"] == COMPARISON
        assert line["status"] == status
        assert line["caller"] == "cj_assessment"
        assert line["duration_ms"] >= 0
        assert line["bytes"] == len(answered.content if cid == ok else failed.content)
        assert line["client"] == "127.0.0.1"
    (unknown,) = [a for a in access if a.get("correlation_id") == refused]
    assert unknown["status"] == 401
    assert "caller" not in unknown
    assert CALLER_KEY not in served.text()
    assert "not-a-key" not in served.text()

    # The provider's failure, logged during the request (the failure event), names it.
    during = [
        line
        for line in lines
        if line.get("correlation_id") == failing and line["logger"] != access[0]["logger"]
    ]
    failures = [line for line in during if "llm_provider.failure" in line["event"]]
    assert failures, during
    assert all(line["caller"] == "cj_assessment" for line in failures)
    assert all(line["provider"] == "mock" for line in failures)
    assert all(line["model"] for line in failures)


async def test_a_queued_requests_lines_in_the_worker_and_relay_name_it(
    redis_server: RedisServer, tmp_path: Path
):
    pool = ProcessPool(
        tmp_path,
        redis_server.url,
        prefix=f"logs{uuid.uuid4().hex[:8]}",
        defaults={"log_format": "json", "callers": callers_env(CALLERS)},
    )
    try:
        api = pool.start("serve", "serve", worker_enabled=False)
        worker = pool.start("worker", "worker")
        await api.wait_ready(within=45)
        await worker.wait_ready(within=45)
        correlation_id = str(uuid.uuid4())
        async with httpx.AsyncClient(base_url=api.base_url, timeout=10) as client:
            queued = await client.post(
                COMPARISON,
                json={**BODY, "processing_mode": "async"},
                headers=bearer(CALLER_KEY) | {"X-Correlation-ID": correlation_id},
            )
        assert queued.status_code == 202, queued.text
        queue_id = queued.json()["queue_id"]

        result_line = "llm_provider.comparison_result"
        await worker.wait_for_log("request_completed", within=30)
        # Either process's relay may deliver it (every `serve` and `worker` runs one).
        await poll_until(
            lambda: result_line in api.text() + worker.text(),
            within=30,
            what="the result event delivered",
        )
        lines = _json_lines(api) + _json_lines(worker)
    finally:
        pool.close()

    completed = [
        line for line in _json_lines(worker) if "llm_provider.request_completed" in line["event"]
    ]
    assert len(completed) == 1, completed
    assert completed[0]["queue_id"] == queue_id
    assert completed[0]["correlation_id"] == correlation_id
    assert completed[0]["caller"] == "cj_assessment"
    assert completed[0]["provider"] == "mock"
    assert completed[0]["model"]

    delivered = [line for line in lines if result_line in line["event"]]
    assert delivered, "the relay published the result event as a log line"
    for line in delivered:
        assert line["request_id"] == queue_id
        assert line["correlation_id"] == correlation_id
        assert line["delivery_id"]
        assert line["channel"] == "kafka"
