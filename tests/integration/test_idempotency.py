"""Exactly-once requests (R2): one Idempotency-Key, one request, even under concurrent retries."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, cast

import httpx
import pytest
from redis.asyncio import Redis

from common_core.enums import LLMProviderType
from services.llm_provider_service.errors import ProviderAuthError, QueueUnavailableError
from services.llm_provider_service.idempotency.guard import IdempotencyGuard
from services.llm_provider_service.idempotency.memory import InMemoryIdempotencyStore
from services.llm_provider_service.models import IdempotencyEntry
from services.llm_provider_service.orchestrator import Completed
from services.llm_provider_service.queue.memory import InMemoryRequestQueue
from services.llm_provider_service.redis.idempotency import RedisIdempotencyStore
from services.llm_provider_service.redis.keys import RedisKeys
from tests.factories import make_job, make_request, make_result
from tests.integration.conftest import StartApp
from tests.support.redis_server import RedisServer
from tests.support.served_app import served_app

COMPARISON = "/api/v1/comparison"


def body(**fields: Any) -> dict[str, Any]:
    return {
        "user_prompt": "Which essay is better argued?",
        "essay_a": "A careful argument.",
        "essay_b": "A loud assertion.",
        **fields,
    }


@pytest.fixture
def prefix() -> str:
    return f"idem{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def redis_app(start_app: StartApp, redis_server: RedisServer, prefix: str):
    return await start_app(
        enable_queue_persistence=True,
        redis_url=redis_server.url,
        queue_key_prefix=prefix,
        worker_enabled=False,
    )


async def count_records(redis_server: RedisServer, prefix: str) -> int:
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        return len([k async for k in redis.scan_iter(match=f"{{{prefix}}}:req:*")])
    finally:
        await redis.aclose()


async def calls_made(client) -> float:
    text = (await (await client.get("/metrics")).get_data(as_text=True)).splitlines()
    lines = [
        line
        for line in text
        if line.startswith("llm_provider_provider_calls_total{") and 'outcome="success"' in line
    ]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


async def test_r2_concurrent_retries_with_one_key_make_one_record(
    redis_app, redis_server: RedisServer, prefix: str
):
    headers = {"Idempotency-Key": "cj-batch-7-pair-1-2"}
    responses = await asyncio.gather(
        *(
            redis_app.post(COMPARISON, json=body(processing_mode="async"), headers=headers)
            for _ in range(40)
        )
    )
    assert {r.status_code for r in responses} == {202}
    queue_ids = {(await r.get_json())["queue_id"] for r in responses}
    assert len(queue_ids) == 1
    assert await count_records(redis_server, prefix) == 1
    replayed = [r for r in responses if r.headers.get("Idempotent-Replayed") == "true"]
    assert len(replayed) == 39


async def test_r2_same_key_with_another_body_is_refused(redis_app):
    headers = {"Idempotency-Key": "k-1"}
    first = await redis_app.post(COMPARISON, json=body(processing_mode="async"), headers=headers)
    assert first.status_code == 202
    other = await redis_app.post(
        COMPARISON, json=body(processing_mode="async", essay_b="Different."), headers=headers
    )
    assert other.status_code == 409
    assert (await other.get_json())["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_r2_immediate_retry_returns_the_same_result_with_one_call(start_app: StartApp):
    client = await start_app()
    headers = {"Idempotency-Key": "feedback-123"}
    results = await asyncio.gather(
        *(client.post(COMPARISON, json=body(), headers=headers) for _ in range(10))
    )
    assert {r.status_code for r in results} == {200}
    bodies = [await r.get_json() for r in results]
    assert len({b["request_id"] for b in bodies}) == 1
    assert len({(b["winner"], b["justification"]) for b in bodies}) == 1
    assert await calls_made(client) == 1.0


async def test_identical_requests_without_a_key_are_independent_judgements(start_app: StartApp):
    client = await start_app()
    bodies = [await (await client.post(COMPARISON, json=body())).get_json() for _ in range(15)]
    assert len({b["request_id"] for b in bodies}) == 15
    assert await calls_made(client) == 15.0
    assert len({(b["winner"], b["confidence"], b["justification"]) for b in bodies}) > 1


async def test_a_failed_first_attempt_frees_the_key(start_app: StartApp):
    client = await start_app()
    await client.post("/api/v1/dev/mock-fault", json={"error_rate": 1.0})
    headers = {"Idempotency-Key": "retry-me"}
    failed = await client.post(COMPARISON, json=body(processing_mode="immediate"), headers=headers)
    assert failed.status_code == 503
    await client.post("/api/v1/dev/mock-fault", json={"error_rate": 0.0})
    retried = await client.post(COMPARISON, json=body(processing_mode="immediate"), headers=headers)
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried.headers


async def test_the_field_works_like_the_header_and_they_must_agree(start_app: StartApp):
    client = await start_app(worker_enabled=False)
    first = await client.post(COMPARISON, json=body(processing_mode="async", idempotency_key="f"))
    again = await client.post(
        COMPARISON, json=body(processing_mode="async"), headers={"Idempotency-Key": "f"}
    )
    # The key is not part of the fingerprint: the same body with the key sent either way is
    # the same request.
    assert first.status_code == 202
    assert again.status_code == 202
    assert (await again.get_json())["queue_id"] == (await first.get_json())["queue_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    mismatch = await client.post(
        COMPARISON,
        json=body(processing_mode="async", idempotency_key="a"),
        headers={"Idempotency-Key": "b"},
    )
    assert mismatch.status_code == 400
    assert (await mismatch.get_json())["error"]["details"]["field"] == "idempotency_key"


async def test_a_caller_that_hangs_up_does_not_cancel_its_judgement(make_settings):
    # A client timeout while the provider is still answering: over real HTTP the server
    # cancels the handler. With a key, the submission finishes anyway, so the retry gets
    # that judgement instead of paying for a second call after one abandoned half-way.
    settings = make_settings(mock_latency_ms=400.0, mock_latency_jitter_ms=0.0)
    headers = {"Idempotency-Key": "hang-up-1"}
    request = body(processing_mode="immediate")
    async with (
        served_app(settings) as served,
        httpx.AsyncClient(base_url=served.base_url) as http,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await http.post(COMPARISON, json=request, headers=headers, timeout=0.1)
        retry = await http.post(COMPARISON, json=request, headers=headers, timeout=10.0)
        metrics = (await http.get("/metrics")).text

    assert retry.status_code == 200
    assert retry.headers.get("Idempotent-Replayed") == "true"
    attempts = [
        line
        for line in metrics.splitlines()
        if line.startswith("llm_provider_provider_calls_total{") and 'provider="mock"' in line
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in attempts) == 1.0  # any outcome


# -- A reservation withdrawn after its 503 (Redis stalled while the SET NX was in flight) ----


@pytest.fixture(params=["redis", "memory"])
async def store(request: pytest.FixtureRequest, redis_server: RedisServer, prefix: str):
    if request.param == "memory":
        yield InMemoryIdempotencyStore()
        return
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        yield RedisIdempotencyStore(redis, RedisKeys(prefix))
    finally:
        await redis.aclose()


def pending(fingerprint: str = "body-1") -> IdempotencyEntry:
    return IdempotencyEntry(fingerprint=fingerprint, request_id=uuid.uuid4())


async def test_a_reservation_that_lands_after_its_release_writes_nothing(store):
    late = pending()
    await store.release("caller/k", late, fence_seconds=60.0)

    with pytest.raises(QueueUnavailableError):
        await store.reserve("caller/k", late, hold_seconds=60.0)

    assert await store.get("caller/k") is None
    retry = pending()
    assert await store.reserve("caller/k", retry, hold_seconds=60.0) is None
    assert await store.get("caller/k") == retry


async def test_a_release_withdraws_only_its_own_reservation(store):
    landed, other = pending(), pending()
    assert await store.reserve("caller/k", landed, hold_seconds=60.0) is None

    await store.release("caller/k", other, fence_seconds=60.0)
    kept = await store.get("caller/k")
    await store.release("caller/k", landed, fence_seconds=60.0)

    assert kept == landed
    assert await store.get("caller/k") is None


async def test_a_release_leaves_a_finished_entry_alone(store):
    mine = pending()
    assert await store.reserve("caller/k", mine, hold_seconds=60.0) is None
    finished = mine.model_copy(update={"outcome": "queued"})
    await store.save("caller/k", finished, keep_seconds=60.0)

    await store.release("caller/k", mine, fence_seconds=60.0)

    assert await store.get("caller/k") == finished


async def test_a_late_save_does_not_replace_another_requests_reservation(store):
    """A first request's save retried after its reservation lapsed must not overwrite the
    reservation a retry has taken since (that retry paid for its own call)."""
    mine, theirs = pending(), pending()
    assert await store.reserve("caller/k", theirs, hold_seconds=60.0) is None

    await store.save("caller/k", mine.model_copy(update={"outcome": "queued"}), keep_seconds=60.0)

    assert await store.get("caller/k") == theirs


async def test_a_save_lands_when_the_key_has_lapsed(store):
    finished = pending().model_copy(update={"outcome": "queued"})

    await store.save("caller/k", finished, keep_seconds=60.0)

    assert await store.get("caller/k") == finished


class UnreachableStore(InMemoryIdempotencyStore):
    async def reserve(
        self, key: str, entry: IdempotencyEntry, *, hold_seconds: float
    ) -> IdempotencyEntry | None:
        raise QueueUnavailableError("the idempotency store is unreachable")

    async def release(self, key: str, entry: IdempotencyEntry, *, fence_seconds: float) -> None:
        raise QueueUnavailableError("the idempotency store is unreachable")


async def test_closing_the_guard_stops_settling_keys_and_says_how_many_were_left(
    make_settings: Any, caplog: pytest.LogCaptureFixture
):
    settings = make_settings()
    queue = InMemoryRequestQueue(settings.queue)
    guard = IdempotencyGuard(cast(Any, None), UnreachableStore(), queue, settings)
    with pytest.raises(QueueUnavailableError):
        await guard.submit(make_request(), key="cj-1")

    with caplog.at_level(logging.WARNING, logger="services.llm_provider_service.idempotency"):
        await guard.close()

    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "1 idempotency keys left unsettled" in warning.getMessage()
    assert not asyncio.all_tasks() - {asyncio.current_task()}


class PolledStore(InMemoryIdempotencyStore):
    """Tells when a waiting retry has polled the key."""

    def __init__(self) -> None:
        super().__init__()
        self.polled = asyncio.Event()

    async def get(self, key: str) -> IdempotencyEntry | None:
        self.polled.set()
        return await super().get(key)


class FirstFailsLater:
    """A replica's orchestrator whose one request fails, without queueing, once let go."""

    def __init__(self) -> None:
        self.started, self.go = asyncio.Event(), asyncio.Event()

    async def submit(self, request: Any, **ids: Any) -> Any:
        self.started.set()
        await self.go.wait()
        raise ProviderAuthError(LLMProviderType.MOCK, "bad key", status=401)


class Answers:
    """Another replica's orchestrator, which answers."""

    def __init__(self) -> None:
        self.calls = 0

    async def submit(self, request: Any, **ids: Any) -> Completed:
        self.calls += 1
        return Completed(make_result(make_job(request_id=ids["request_id"])), provider_seconds=0.0)


async def test_a_retry_waiting_for_a_first_request_that_fails_goes_ahead_itself(
    make_settings: Any,
):
    # Two replicas share the keys; the retry on the second waits for the first request on the
    # first replica, which then fails having created nothing.
    settings = make_settings(idempotency_wait_seconds=10.0)
    store = PolledStore()
    queue = InMemoryRequestQueue(settings.queue)
    failing, answering = FirstFailsLater(), Answers()
    first = IdempotencyGuard(cast(Any, failing), store, queue, settings)
    second = IdempotencyGuard(cast(Any, answering), store, queue, settings)
    request = make_request()

    first_try = asyncio.create_task(first.submit(request, key="cj-2"))
    await failing.started.wait()
    store.polled.clear()
    retry = asyncio.create_task(second.submit(request, key="cj-2"))
    await store.polled.wait()  # the retry is waiting for the first request
    failing.go.set()

    with pytest.raises(ProviderAuthError):
        await first_try
    answered = await retry

    assert isinstance(answered, Completed)
    assert answering.calls == 1
    assert (await store.get("cj-2")) is not None
