"""Callers over HTTP: authentication, each caller's own requests and keys, its lists, caps
and quotas, in one process (the real process in production settings: tests/e2e)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from quart.testing.connections import WebsocketDisconnectError, WebsocketResponseError
from quart.typing import TestClientProtocol as Client

from tests.integration.conftest import StartApp
from tests.support.callers import RESULT_TOPIC, bearer, policy
from tests.support.redis_server import free_port

COMPARISON = "/api/v1/comparison"
# Fixed, not uuid4(): pytest-xdist needs the same test ids in every worker.
UNKNOWN_ID = "7f1c0b0e-4a43-4b8e-9a52-2f1d3c4e5a6b"
BODY: dict[str, Any] = {
    "user_prompt": "Which essay is better argued?",
    "essay_a": "A careful argument.",
    "essay_b": "A loud assertion.",
}
QUEUED = {**BODY, "processing_mode": "async"}
CJ, FEEDBACK, OPS = bearer("cj-key"), bearer("feedback-key"), bearer("ops-key")
CALLERS = {
    "cj_assessment": policy(
        "cj-key", webhook_hosts=["hooks.cj.example"], max_priority=6, max_queued=3
    ),
    "ai_feedback": policy(
        "feedback-key", topics=[], requests_per_minute=2, default_processing_mode="async"
    ),
    "ops": policy("ops-key", admin=True),
}
SECRET = "a-webhook-signing-secret"


@pytest.fixture
async def client(start_app: StartApp) -> Client:
    return await start_app(
        callers=CALLERS,
        worker_enabled=False,  # queued requests stay queued
        webhook_allowed_hosts=("hooks.cj.example", "hooks.feedback.example"),
        webhook_signing_secret=SECRET,
    )


async def _queued(client: Client, headers: dict[str, str], **fields: Any) -> str:
    response = await client.post(COMPARISON, json={**QUEUED, **fields}, headers=headers)
    assert response.status_code == 202, await response.get_json()
    queue_id: str = (await response.get_json())["queue_id"]
    return queue_id


async def _refusals(client: Client, caller: str, quota: str) -> float:
    text = await (await client.get("/metrics")).get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "llm_provider_quota_refusals_total" and sample.labels == {
                "caller": caller,
                "quota": quota,
            }:
                return sample.value
    return 0.0


async def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, await response.get_data(as_text=True)
    body: dict[str, Any] = (await response.get_json())["error"]
    assert body["code"] == code
    return body


@pytest.mark.parametrize(
    ("headers", "reason"),
    [({}, "no_key"), ({"Authorization": "Bearer not-a-key"}, "bad_key")],
    ids=["no_key", "wrong_key"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", COMPARISON),
        ("GET", f"/api/v1/status/{UNKNOWN_ID}"),
        ("DELETE", f"/api/v1/status/{UNKNOWN_ID}"),
        ("GET", "/api/v1/providers"),
        ("POST", "/api/v1/providers/mock/test"),
        ("GET", "/api/v1/position-bias"),
        ("POST", "/api/v1/dev/mock-fault"),
    ],
)
async def test_every_api_route_needs_a_callers_key(
    client: Client, method: str, path: str, headers: dict[str, str], reason: str
):
    response = await client.open(path, method=method, json=BODY, headers=headers)

    error = await _error(response, 401, "UNAUTHORIZED")
    assert error["details"] == {"reason": reason}
    assert error["correlation_id"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/openapi.json"])
async def test_probes_scrapers_and_the_spec_stay_open(client: Client, path: str):
    assert (await client.get(path)).status_code == 200


async def test_a_websocket_without_a_key_is_refused_before_it_opens(client: Client):
    queue_id = await _queued(client, CJ)

    with pytest.raises(WebsocketResponseError) as refused:
        async with client.websocket(f"/api/v1/ws/status/{queue_id}") as socket:
            await socket.receive()

    assert refused.value.response.status_code == 401


async def test_another_callers_request_does_not_exist_for_it(client: Client):
    queue_id = await _queued(client, CJ)
    path = f"/api/v1/status/{queue_id}"

    read = await client.get(path, headers=FEEDBACK)
    cancel = await client.delete(path, headers=FEEDBACK)
    admin = await client.get(path, headers=OPS)
    unknown = await client.get(f"/api/v1/status/{uuid.uuid4()}", headers=FEEDBACK)

    for response in (read, cancel, admin):
        error = await _error(response, 404, "NOT_FOUND")
        # Word for word what an id that never existed gets, but for the id itself.
        unknown_error = (await unknown.get_json())["error"]
        assert (
            error["message"].split(" queue_id ")[0]
            == unknown_error["message"].split(" queue_id ")[0]
        )
    still = await client.get(path, headers=CJ)
    assert (await still.get_json())["status"] == "queued"  # the cancel did nothing
    cancelled = await client.delete(path, headers=CJ)
    assert (await cancelled.get_json())["status"] == "cancelled"


async def test_another_callers_request_cannot_be_watched(client: Client):
    queue_id = await _queued(client, CJ)
    path = f"/api/v1/ws/status/{queue_id}"

    async def messages(headers: dict[str, str]) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        async with client.websocket(path, headers=headers) as socket:
            try:
                async with asyncio.timeout(0.5):  # a watcher of a queued request stays open
                    while True:
                        received.append(json.loads(await socket.receive()))
            except (WebsocketDisconnectError, TimeoutError):
                pass
        return received

    refused = await messages(FEEDBACK)
    assert [m["error"]["code"] for m in refused] == ["NOT_FOUND"]
    assert [m["status"] for m in await messages(CJ)] == ["queued"]


async def test_idempotency_keys_are_each_callers_own(client: Client):
    key = {"Idempotency-Key": "batch-7-pair-12"}

    mine = await client.post(COMPARISON, json=QUEUED, headers=CJ | key)
    theirs = await client.post(
        COMPARISON, json={**QUEUED, "essay_b": "Another essay."}, headers=FEEDBACK | key
    )
    same_body = await client.post(COMPARISON, json=QUEUED, headers=OPS | key)
    my_retry = await client.post(COMPARISON, json=QUEUED, headers=CJ | key)

    assert mine.status_code == 202
    assert theirs.status_code == 202  # never a 409 naming another caller's request
    assert same_body.status_code == 202
    assert "Idempotent-Replayed" not in same_body.headers  # not a replay of cj's request
    assert "Idempotent-Replayed" not in theirs.headers
    assert my_retry.headers["Idempotent-Replayed"] == "true"
    ids = [(await r.get_json())["queue_id"] for r in (mine, theirs, same_body, my_retry)]
    assert ids[0] == ids[3]
    assert ids[0] not in ids[1:3]
    conflict = await client.post(
        COMPARISON, json={**QUEUED, "essay_b": "Changed."}, headers=CJ | key
    )
    error = await _error(conflict, 409, "IDEMPOTENCY_KEY_REUSED")
    assert error["details"]["request_id"] == ids[0]  # its own request, to read or cancel


async def test_topics_are_the_callers_own(client: Client):
    own = await client.post(COMPARISON, json={**QUEUED, "callback_topic": RESULT_TOPIC}, headers=CJ)
    not_listed = await client.post(
        COMPARISON, json={**QUEUED, "callback_topic": RESULT_TOPIC}, headers=FEEDBACK
    )
    elsewhere = await client.post(
        COMPARISON,
        json={**QUEUED, "callback_topic": "huleedu.cj_assessment.commands.v1"},
        headers=CJ,
    )

    assert own.status_code == 202
    error = await _error(not_listed, 403, "FORBIDDEN")
    assert error["details"] == {"field": "callback_topic", "reason": "topic_not_allowed_for_caller"}
    error = await _error(elsewhere, 403, "FORBIDDEN")
    assert error["details"]["field"] == "callback_topic"


async def test_webhook_hosts_are_the_callers_own(client: Client):
    own = await client.post(
        COMPARISON, json={**QUEUED, "callback_url": "https://hooks.cj.example/r"}, headers=CJ
    )
    another_callers = await client.post(
        COMPARISON, json={**QUEUED, "callback_url": "https://hooks.feedback.example/r"}, headers=CJ
    )
    nobodys = await client.post(
        COMPARISON, json={**QUEUED, "callback_url": "https://evil.example/r"}, headers=CJ
    )

    assert own.status_code == 202
    error = await _error(another_callers, 403, "FORBIDDEN")
    assert error["details"] == {"field": "callback_url", "reason": "host_not_allowed_for_caller"}
    await _error(nobodys, 400, "CALLBACK_NOT_ALLOWED")  # outside the service's own list


async def test_priority_is_capped_per_caller(client: Client):
    above = await client.post(COMPARISON, json={**QUEUED, "priority": 7}, headers=CJ)
    at_cap = await client.post(COMPARISON, json={**QUEUED, "priority": 6}, headers=CJ)
    admin = await client.post(COMPARISON, json={**QUEUED, "priority": 10}, headers=OPS)

    error = await _error(above, 422, "CALLER_LIMIT_EXCEEDED")
    assert error["details"] == {"field": "priority", "limit": 6}
    assert at_cap.status_code == 202
    assert admin.status_code == 202  # ops has no cap below 10


async def test_a_caller_has_its_own_default_mode(client: Client):
    feedback = await client.post(COMPARISON, json=BODY, headers=FEEDBACK)
    cj = await client.post(COMPARISON, json=BODY, headers=CJ)

    assert feedback.status_code == 202  # its default: async
    assert cj.status_code == 200  # the service's default: queue_if_unavailable, mock up


async def test_a_callers_request_rate_is_its_own(client: Client):
    answers = [await client.post(COMPARISON, json=BODY, headers=FEEDBACK) for _ in range(3)]

    assert [a.status_code for a in answers[:2]] == [202, 202]
    error = await _error(answers[2], 429, "QUOTA_EXCEEDED")
    assert error["details"] == {
        "quota": "requests_per_minute",
        "limit": 2,
        "caller": "ai_feedback",
    }
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 30
    assert (await client.post(COMPARISON, json=BODY, headers=CJ)).status_code == 200
    assert await _refusals(client, "ai_feedback", "requests_per_minute") == 1


async def test_a_callers_queued_requests_are_capped(client: Client):
    ids = [await _queued(client, CJ) for _ in range(3)]

    refused = await client.post(COMPARISON, json=QUEUED, headers=CJ)
    error = await _error(refused, 429, "QUOTA_EXCEEDED")
    assert error["details"]["quota"] == "max_queued"
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await client.post(COMPARISON, json=QUEUED, headers=OPS)).status_code == 202
    await client.delete(f"/api/v1/status/{ids[0]}", headers=CJ)
    assert (await client.post(COMPARISON, json=QUEUED, headers=CJ)).status_code == 202
    assert await _refusals(client, "cj_assessment", "max_queued") == 1


async def test_provider_tests_and_drills_need_an_admin(client: Client):
    test = await client.post("/api/v1/providers/mock/test", headers=CJ)
    drill = await client.post("/api/v1/dev/mock-fault", json={"error_rate": 1.0}, headers=CJ)

    await _error(test, 403, "FORBIDDEN")
    await _error(drill, 403, "FORBIDDEN")
    assert (await client.post(COMPARISON, json=BODY, headers=CJ)).status_code == 200  # no drill
    assert (await client.post("/api/v1/providers/mock/test", headers=OPS)).status_code == 200
    assert (await client.get("/api/v1/providers", headers=CJ)).status_code == 200
    assert (await client.get("/api/v1/position-bias", headers=CJ)).status_code == 200


async def test_an_open_service_serves_anyone(start_app: StartApp):
    client = await start_app(worker_enabled=False)

    queued = await client.post(COMPARISON, json=QUEUED)
    queue_id = (await queued.get_json())["queue_id"]

    assert queued.status_code == 202
    assert (await client.get(f"/api/v1/status/{queue_id}")).status_code == 200
    ignored = await client.get(f"/api/v1/status/{queue_id}", headers=bearer("whatever"))
    assert ignored.status_code == 200


async def test_error_bodies_never_name_an_internal_host(start_app: StartApp):
    port = free_port()  # nothing listens: Redis is "down"
    client = await start_app(
        enable_queue_persistence=True,
        redis_url=f"redis://127.0.0.1:{port}/0",
        redis_connect_timeout_seconds=0.2,
        worker_enabled=False,
    )

    queued = await client.post(COMPARISON, json=QUEUED)
    status = await client.get(f"/api/v1/status/{uuid.uuid4()}")
    health = await client.get("/healthz")

    error = await _error(queued, 503, "QUEUE_UNAVAILABLE")
    assert "unreachable" in error["message"]
    await _error(status, 503, "QUEUE_UNAVAILABLE")
    for response in (queued, status, health):
        text = await response.get_data(as_text=True)
        assert str(port) not in text
        assert "127.0.0.1" not in text


async def test_an_idempotency_store_outage_names_that_store(start_app: StartApp):
    port = free_port()  # nothing listens: Redis is "down"
    client = await start_app(
        enable_queue_persistence=True,
        redis_url=f"redis://127.0.0.1:{port}/0",
        redis_connect_timeout_seconds=0.2,
        worker_enabled=False,
    )

    queued = await client.post(COMPARISON, json=QUEUED, headers={"Idempotency-Key": "k-1"})

    error = await _error(queued, 503, "QUEUE_UNAVAILABLE")
    assert "the idempotency store" in error["message"]
    assert "request queue" not in error["message"]
    assert str(port) not in error["message"]
