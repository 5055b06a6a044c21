"""End to end: `pdm run serve` as a real process, driven over HTTP through an outage drill."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command() -> list[str]:
    """`pdm run serve`, as the README says; the same module directly where PDM is absent."""
    pdm = shutil.which("pdm")
    if pdm:
        return [pdm, "run", "serve"]
    return [sys.executable, "-m", "services.llm_provider_service", "serve"]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes], Path]]:
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LLM_PROVIDER_SERVICE_") and key != "ENVIRONMENT"
    }
    env.update(
        {
            "ENVIRONMENT": "testing",
            "LLM_PROVIDER_SERVICE_PORT": str(port),
            "LLM_PROVIDER_SERVICE_MOCK_LATENCY_MS": "5",
            "LLM_PROVIDER_SERVICE_MOCK_LATENCY_JITTER_MS": "3",
            "LLM_PROVIDER_SERVICE_QUEUE_POLL_INTERVAL_SECONDS": "0.1",
            "LLM_PROVIDER_SERVICE_QUEUE_RETRY_BASE_SECONDS": "0.1",
            "LLM_PROVIDER_SERVICE_QUEUE_RETRY_MAX_SECONDS": "0.5",
            "LLM_PROVIDER_SERVICE_QUEUE_MAX_ATTEMPTS": "50",
            "LLM_PROVIDER_SERVICE_CIRCUIT_BREAKER_FAILURE_THRESHOLD": "3",
            "LLM_PROVIDER_SERVICE_CIRCUIT_BREAKER_RESET_TIMEOUT_SECONDS": "0.5",
            "PYTHONUNBUFFERED": "1",
        }
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            serve_command(), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        _wait_until_healthy(client, process, log_path)
        yield client, process, log_path
    finally:
        client.close()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _wait_until_healthy(client: httpx.Client, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"service exited with {process.returncode}:\n{log.read_text()}")
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"service did not become healthy:\n{log.read_text()}")


def compare(client: httpx.Client) -> httpx.Response:
    return client.post(
        "/api/v1/comparison",
        json={
            "user_prompt": "Which essay answers the question better?",
            "essay_a": "Essay one: a careful argument.",
            "essay_b": "Essay two: a lively story.",
        },
    )


def metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"metric {name} not exported")


def test_outage_story(service):
    client, process, log = service

    # Provider up: a fresh judgement at once.
    first = compare(client)
    assert first.status_code == 200, first.text
    assert first.json()["winner"] in {"Essay A", "Essay B"}

    # Identical requests are independent judgements, never one cached answer.
    answers = [compare(client).json() for _ in range(20)]
    assert len({a["request_id"] for a in answers}) == 20
    assert len({(a["winner"], a["confidence"], a["justification"]) for a in answers}) > 1
    assert not any(a["served_from_cache"] for a in answers)
    assert metric(client, "llm_provider_cache_served_responses_total") == 0.0

    # Outage drill: every call fails; requests are queued, not lost, not refused.
    fault = client.post("/api/v1/dev/mock-fault", json={"error_rate": 1.0})
    assert fault.status_code == 200
    queued = [compare(client) for _ in range(10)]
    assert [r.status_code for r in queued] == [202] * 10
    assert all(int(r.headers["Retry-After"]) >= 1 for r in queued)
    providers = client.get("/api/v1/providers").json()["providers"]
    mock = next(p for p in providers if p["name"] == "mock")
    assert mock["circuit_breaker_state"] in {"open", "half_open"}
    queue_ids = [r.json()["queue_id"] for r in queued]
    statuses = {client.get(f"/api/v1/status/{q}").json()["status"] for q in queue_ids}
    assert statuses <= {"queued", "processing"}

    # Recovery: every queued request completes and its status shows the result.
    assert client.post("/api/v1/dev/mock-fault", json={"error_rate": 0.0}).status_code == 200
    deadline = time.monotonic() + 60
    pending = set(queue_ids)
    while pending and time.monotonic() < deadline:
        for queue_id in list(pending):
            body = client.get(f"/api/v1/status/{queue_id}").json()
            assert body["status"] in {"queued", "processing", "completed"}, body
            if body["status"] == "completed":
                assert body["result"]["request_id"] == queue_id
                assert body["result"]["winner"] in {"Essay A", "Essay B"}
                pending.discard(queue_id)
        time.sleep(0.1)
    assert not pending, f"still not completed: {pending}"
    assert metric(client, "llm_provider_cache_served_responses_total") == 0.0

    # SIGTERM: a clean stop.
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, log.read_text()
    assert "llm_provider_service stopped" in log.read_text()
