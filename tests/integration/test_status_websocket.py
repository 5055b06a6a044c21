"""The status WebSocket: a client sees queued -> processing -> completed, then the close."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from typing import Any

from quart.testing.connections import WebsocketDisconnectError

from tests.integration.conftest import StartApp

BODY = {
    "user_prompt": "Which essay is better argued?",
    "essay_a": "A careful argument.",
    "essay_b": "A loud assertion.",
    "processing_mode": "async",
}


async def receive_all(client: Any, path: str, within: float = 10.0) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    async with client.websocket(path) as socket:
        try:
            async with asyncio.timeout(within):
                while True:
                    messages.append(json.loads(await socket.receive()))
        except WebsocketDisconnectError:
            pass
    return messages


async def test_a_client_sees_each_status_until_the_request_ends(start_app: StartApp):
    client = await start_app(
        mock_latency_ms=300.0,  # "processing" lasts several polls
        queue_poll_interval_seconds=0.05,
        circuit_breaker_failure_threshold=3,
        circuit_breaker_reset_timeout_seconds=1.0,
    )
    # An outage opens the breaker, so the worker leaves the request queued for a while.
    await client.post("/api/v1/dev/mock-fault", json={"error_rate": 1.0})
    for _ in range(3):
        failed = await client.post(
            "/api/v1/comparison", json={**BODY, "processing_mode": "immediate"}
        )
        assert failed.status_code == 503
    queued = await client.post("/api/v1/comparison", json=BODY)
    assert queued.status_code == 202
    queue_id = (await queued.get_json())["queue_id"]
    await client.post("/api/v1/dev/mock-fault", json={"error_rate": 0.0})

    messages = await receive_all(client, f"/api/v1/ws/status/{queue_id}")

    statuses = [m["status"] for m in messages]
    assert statuses[0] == "queued"
    assert messages[0]["position_in_queue"] == 1
    assert "processing" in statuses
    assert statuses[-1] == "completed"
    assert messages[-1]["result"]["request_id"] == queue_id
    assert all(m["queue_id"] == queue_id for m in messages)
    # Only changes are pushed: no two consecutive messages are the same state.
    states = [(m["status"], m["attempts"], m["position_in_queue"]) for m in messages]
    assert all(a != b for a, b in itertools.pairwise(states))


async def test_an_unknown_or_malformed_id_gets_one_error_then_the_close(start_app: StartApp):
    client = await start_app(worker_enabled=False)

    unknown = await receive_all(client, f"/api/v1/ws/status/{uuid.uuid4()}")
    malformed = await receive_all(client, "/api/v1/ws/status/not-a-uuid")

    assert [m["error"]["code"] for m in unknown] == ["NOT_FOUND"]
    assert [m["error"]["code"] for m in malformed] == ["VALIDATION_ERROR"]


async def test_an_ended_request_is_sent_once_and_the_socket_closes(start_app: StartApp):
    client = await start_app(worker_enabled=False)
    queue_id = (await (await client.post("/api/v1/comparison", json=BODY)).get_json())["queue_id"]
    assert (await client.delete(f"/api/v1/status/{queue_id}")).status_code == 200

    messages = await receive_all(client, f"/api/v1/ws/status/{queue_id}")

    assert [m["status"] for m in messages] == ["cancelled"]
