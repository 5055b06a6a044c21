"""The service as deployed, attacked as issue 11 describes: two real `serve` replicas in
production settings (Redis with AOF, the Kafka broker, OpenAI through the fake upstream),
each caller with its own key, and the unsafe settings production refuses to start with.

The replicas run no queue worker, so a queued request stays queued while a test looks at it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.support.callers import RESULT_TOPIC, bearer, callers_env, policy
from tests.support.fake_vendors import FakeUpstream
from tests.support.kafka_broker import TansuBroker
from tests.support.processes import ProcessPool, ServiceProcess, refused_start, service_env
from tests.support.redis_server import RedisServer

COMPARISON = "/api/v1/comparison"
BODY: dict[str, Any] = {
    "user_prompt": "Which essay is better argued?",
    "essay_a": "A careful argument.",
    "essay_b": "A loud assertion.",
}
QUEUED = {**BODY, "processing_mode": "async"}
A, B = bearer("caller-a-key"), bearer("caller-b-key")
RATED, CAPPED = bearer("rated-key"), bearer("capped-key")
CALLERS = {
    "caller_a": policy("caller-a-key"),
    "caller_b": policy("caller-b-key"),
    "rated": policy("rated-key", requests_per_minute=4),
    "capped": policy("capped-key", max_queued=2),
}
SECRET = "a-webhook-signing-secret"


def production(upstream: FakeUpstream, broker: TansuBroker) -> dict[str, str]:
    """The variables of a production deployment, but for where its vendor and broker are."""
    return {
        "ENVIRONMENT": "production",
        "OPENAI_API_KEY": "sk-test-openai",
        "LLM_PROVIDER_SERVICE_DEFAULT_LLM_PROVIDER": "openai",
        "LLM_PROVIDER_SERVICE_OPENAI_BASE_URL": upstream.openai_base_url,
        "LLM_PROVIDER_SERVICE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "LLM_PROVIDER_SERVICE_KAFKA_ENABLE_IDEMPOTENCE": "false",  # Tansu refuses it
        "LLM_PROVIDER_SERVICE_CALLERS": callers_env(CALLERS),
        "LLM_PROVIDER_SERVICE_WORKER_ENABLED": "false",
    }


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(seed=11) as server:
        yield server


@pytest.fixture(scope="module")
def replicas(
    redis_server: RedisServer,
    kafka_broker: TansuBroker,
    upstream: FakeUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """Two replicas on one Redis, as a deployment runs them."""
    pool = ProcessPool(
        tmp_path_factory.mktemp("replicas"),
        redis_server.url,
        prefix=f"prod{uuid.uuid4().hex[:8]}",
        environment=production(upstream, kafka_broker),
    )
    try:
        first, second = pool.start("replica-1", "serve"), pool.start("replica-2", "serve")
        asyncio.run(_both_ready(first, second))
        yield first, second
    finally:
        pool.close()


async def _both_ready(*processes: ServiceProcess) -> None:
    await asyncio.gather(*(p.wait_ready(within=45) for p in processes))


@pytest.fixture
async def clients(
    replicas: tuple[ServiceProcess, ServiceProcess],
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with (
        httpx.AsyncClient(base_url=replicas[0].base_url, timeout=10) as one,
        httpx.AsyncClient(base_url=replicas[1].base_url, timeout=10) as two,
    ):
        yield one, two


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert body["code"] == code
    return body


async def test_without_a_key_or_with_a_wrong_one_nothing_is_served(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], upstream: FakeUpstream
):
    calls_before = len(upstream.requests)
    for client in clients:
        for headers, reason in (({}, "no_key"), (bearer("guessed"), "bad_key")):
            for method, path in (
                ("POST", COMPARISON),
                ("POST", "/api/v1/providers/openai/test"),
                ("GET", f"/api/v1/status/{uuid.uuid4()}"),
            ):
                response = await client.request(method, path, json=BODY, headers=headers)
                error = _error(response, 401, "UNAUTHORIZED")
                assert error["details"] == {"reason": reason}

    assert len(upstream.requests) == calls_before, "an unauthenticated request was billed"


async def test_a_caller_answers_fresh_and_provider_tests_need_an_admin(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], upstream: FakeUpstream
):
    answered = await clients[0].post(COMPARISON, json=BODY, headers=A)
    calls_before = len(upstream.requests)
    tests = [await clients[1].post("/api/v1/providers/openai/test", headers=A) for _ in range(5)]

    assert answered.status_code == 200, answered.text
    assert answered.json()["provider"] == "openai"
    for test in tests:
        _error(test, 403, "FORBIDDEN")
    assert len(upstream.requests) == calls_before
    assert (await clients[0].post("/api/v1/dev/mock-fault", json={}, headers=A)).status_code == 404


async def test_caller_b_cannot_see_stream_cancel_or_collide_with_a(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    replicas: tuple[ServiceProcess, ServiceProcess],
):
    one, two = clients
    key = {"Idempotency-Key": f"pair-{uuid.uuid4().hex[:6]}"}
    mine = await one.post(COMPARISON, json=QUEUED, headers=A | key)
    assert mine.status_code == 202, mine.text
    queue_id = mine.json()["queue_id"]
    path = f"/api/v1/status/{queue_id}"

    for client in clients:
        _error(await client.get(path, headers=B), 404, "NOT_FOUND")
        _error(await client.delete(path, headers=B), 404, "NOT_FOUND")
    ws_url = replicas[1].base_url.replace("http", "ws", 1) + f"/api/v1/ws/status/{queue_id}"
    assert await _first_ws_message(ws_url, B) == {"code": "NOT_FOUND"}
    with pytest.raises(InvalidStatus) as refused:
        await _first_ws_message(ws_url, {})
    assert refused.value.response.status_code == 401
    # The same key with another body from B is B's own new request, never a 409 naming A's.
    theirs = await two.post(COMPARISON, json={**QUEUED, "essay_b": "Other."}, headers=B | key)
    assert theirs.status_code == 202, theirs.text
    assert theirs.json()["queue_id"] != queue_id
    assert "Idempotent-Replayed" not in theirs.headers
    # A still has its request, on either replica, unchanged by B.
    assert (await two.get(path, headers=A)).json()["status"] == "queued"
    assert await _first_ws_message(ws_url, A) == {"status": "queued"}
    replay = await two.post(COMPARISON, json=QUEUED, headers=A | key)
    assert replay.json()["queue_id"] == queue_id


async def _first_ws_message(url: str, headers: dict[str, str]) -> dict[str, Any]:
    async with websockets.connect(url, additional_headers=headers, open_timeout=10) as socket:
        message = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
    if message.get("error"):
        return {"code": message["error"]["code"]}
    return {"status": message["status"]}


async def test_topics_outside_a_callers_list_are_refused(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
):
    one, _ = clients
    commands = await one.post(
        COMPARISON,
        json={**QUEUED, "callback_topic": "huleedu.cj_assessment.commands.v1"},
        headers=A,
    )
    malformed = await one.post(COMPARISON, json={**QUEUED, "callback_topic": "a b"}, headers=A)
    own = await one.post(COMPARISON, json={**QUEUED, "callback_topic": RESULT_TOPIC}, headers=A)

    assert _error(commands, 403, "FORBIDDEN")["details"]["field"] == "callback_topic"
    assert _error(malformed, 400, "CALLBACK_NOT_ALLOWED")["details"]["field"] == "callback_topic"
    assert own.status_code == 202, own.text


async def test_a_request_rate_is_shared_by_the_replicas(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
):
    answers = [await clients[i % 2].post(COMPARISON, json=QUEUED, headers=RATED) for i in range(5)]

    assert [a.status_code for a in answers[:4]] == [202] * 4
    error = _error(answers[4], 429, "QUOTA_EXCEEDED")
    assert error["details"]["quota"] == "requests_per_minute"
    assert 1 <= int(answers[4].headers["Retry-After"]) <= 15  # one request per 15 s
    assert (await clients[1].post(COMPARISON, json=QUEUED, headers=A)).status_code == 202


async def test_queued_requests_are_capped_across_the_replicas(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
):
    one, two = clients
    first = await one.post(COMPARISON, json=QUEUED, headers=CAPPED)
    second = await two.post(COMPARISON, json=QUEUED, headers=CAPPED)
    refused = [await c.post(COMPARISON, json=QUEUED, headers=CAPPED) for c in clients]

    assert (first.status_code, second.status_code) == (202, 202)
    for response in refused:
        assert _error(response, 429, "QUOTA_EXCEEDED")["details"]["quota"] == "max_queued"
        assert int(response.headers["Retry-After"]) >= 1
    await two.delete(f"/api/v1/status/{first.json()['queue_id']}", headers=CAPPED)
    assert (await one.post(COMPARISON, json=QUEUED, headers=CAPPED)).status_code == 202


@pytest.mark.parametrize(
    ("unsafe", "why"),
    [
        ({"LLM_PROVIDER_SERVICE_CALLERS": ""}, "no callers are configured"),
        ({"LLM_PROVIDER_SERVICE_WEBHOOK_ALLOW_HTTP": "true"}, "results would travel unencrypted"),
        (
            {"LLM_PROVIDER_SERVICE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true"},
            "into the internal network",
        ),
        ({"LLM_PROVIDER_SERVICE_WEBHOOK_ALLOWED_HOSTS": '["*"]'}, "lets callers send results"),
        ({"LLM_PROVIDER_SERVICE_ENABLE_RESPONSE_CACHE": "true"}, "super-rater"),
    ],
    ids=["open", "http_webhooks", "private_addresses", "any_host", "cache"],
)
def test_production_refuses_to_start_unsafe(
    redis_server: RedisServer,
    kafka_broker: TansuBroker,
    upstream: FakeUpstream,
    tmp_path: Path,
    unsafe: dict[str, str],
    why: str,
):
    env = service_env(redis_url=redis_server.url, prefix="refused", port=1)
    env |= production(upstream, kafka_broker)
    env |= {"LLM_PROVIDER_SERVICE_WEBHOOK_SIGNING_SECRET": SECRET}
    env |= unsafe
    env = {name: value for name, value in env.items() if value != ""}

    lines = refused_start(env)

    assert len(lines) == 1, lines
    assert "ENVIRONMENT=production" in lines[0]
    assert why in lines[0]
