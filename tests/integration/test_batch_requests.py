"""`processing_mode: "batch"` over HTTP: queued (202) into the batch lane, which the worker
never serves; refused with a stable code where no Batch API can take it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from dishka import Provider, Scope, provide
from quart.typing import TestClientProtocol as Client

from common_core.enums import LLMProviderType, ServedVia
from services.llm_provider_service.batch.lane_queue import BatchQueue
from services.llm_provider_service.queue.memory import InMemoryRequestQueue
from services.llm_provider_service.settings import QueueSettings
from tests.factories import make_result
from tests.integration.conftest import StartApp
from tests.integration.test_http_api import (
    STATUS_FIELDS,
    assert_error,
    assert_queued_shape,
    mock_calls_total,
    post_comparison,
    queue_depth,
    timestamp,
    wait_for_status,
)
from tests.integration.test_status_websocket import receive_all
from tests.support.batch_api import ModelsBatchAPI, batch_apis_deps

MOCK_BATCH = batch_apis_deps(ModelsBatchAPI(models=("mock-rater-1",)))


async def batch_app(start_app: StartApp, **settings: Any) -> Client:
    """The app with a Batch API for the mock provider (the real ones are the adapters')."""
    return await start_app(MOCK_BATCH, **settings)


async def test_a_batch_request_is_queued_like_an_async_one(start_app: StartApp):
    client = await batch_app(start_app, worker_enabled=False)
    correlation_id = str(uuid.uuid4())

    response = await post_comparison(client, processing_mode="batch", correlation_id=correlation_id)

    queued = await response.get_json()
    assert_queued_shape(response, queued)
    assert response.headers["Location"] == queued["status_url"]
    assert queued["correlation_id"] == correlation_id
    assert queued["position_in_queue"] == 1
    status = await (await client.get(queued["status_url"])).get_json()
    assert status.keys() >= STATUS_FIELDS
    assert (status["status"], status["attempts"], status["result"]) == ("queued", 0, None)
    assert status["position_in_queue"] == 1
    assert status["provider"] == "mock"
    assert await queue_depth(client) == 1


async def test_the_worker_never_serves_a_batch_request(start_app: StartApp):
    client = await batch_app(start_app)  # the worker runs, and the mock provider is up
    calls_before = await mock_calls_total(client)

    batched = await (await post_comparison(client, processing_mode="batch")).get_json()
    waiting = await (await post_comparison(client, processing_mode="async")).get_json()

    # The worker served the async request queued after it: it has been past the batch one.
    await wait_for_status(client, waiting["status_url"], {"completed"})
    status = await (await client.get(batched["status_url"])).get_json()
    assert (status["status"], status["attempts"]) == ("queued", 0)
    assert await mock_calls_total(client) == calls_before + 1  # the async request's call only


async def test_a_queued_batch_request_can_be_cancelled(start_app: StartApp):
    client = await batch_app(start_app, worker_enabled=False)
    queued = await (await post_comparison(client, processing_mode="batch")).get_json()
    url = queued["status_url"]

    cancelled = await client.delete(url)

    assert cancelled.status_code == 200
    body = await cancelled.get_json()
    assert (body["queue_id"], body["status"]) == (queued["queue_id"], "cancelled")
    assert (await (await client.get(url)).get_json())["status"] == "cancelled"
    await assert_error(await client.delete(url), 409, "CONFLICT")
    assert await queue_depth(client) == 0


async def test_a_batch_request_waits_up_to_its_own_ttl(start_app: StartApp):
    client = await batch_app(start_app, worker_enabled=False)

    default = await (await post_comparison(client, processing_mode="batch")).get_json()
    longest = await (
        await post_comparison(client, processing_mode="batch", ttl_seconds=72 * 3600)
    ).get_json()
    too_long = await post_comparison(client, processing_mode="batch", ttl_seconds=72 * 3600 + 1)
    realtime_too_long = await post_comparison(
        client, processing_mode="async", ttl_seconds=24 * 3600 + 1
    )

    waits = [timestamp(q["expires_at"]) - timestamp(q["queued_at"]) for q in (default, longest)]
    assert abs(waits[0] - timedelta(hours=24)) <= timedelta(milliseconds=1)  # BATCH_DEFAULT_TTL
    assert abs(waits[1] - timedelta(hours=72)) <= timedelta(milliseconds=1)
    error = await assert_error(too_long, 400, "VALIDATION_ERROR")
    assert error["details"]["field"] == "ttl_seconds"
    error = await assert_error(realtime_too_long, 400, "VALIDATION_ERROR")
    assert error["details"]["field"] == "ttl_seconds"


async def test_a_batch_request_without_a_batch_api_is_400_batch_not_supported(
    start_app: StartApp,
):
    client = await batch_app(start_app, worker_enabled=False, batch_providers=[])

    response = await post_comparison(client, processing_mode="batch")

    error = await assert_error(response, 400, "BATCH_NOT_SUPPORTED")
    assert error["details"]["provider"] == "mock"
    assert await queue_depth(client) == 0


async def test_a_batch_request_for_a_model_its_batch_api_refuses_is_400(start_app: StartApp):
    client = await batch_app(start_app, worker_enabled=False)

    response = await post_comparison(
        client,
        processing_mode="batch",
        llm_config_overrides={"model_override": "mock-realtime-only"},
    )

    error = await assert_error(response, 400, "BATCH_NOT_SUPPORTED")
    assert error["details"] == {"provider": "mock", "model": "mock-realtime-only"}
    assert await queue_depth(client) == 0


async def test_a_batch_request_with_a_cache_mode_is_400(start_app: StartApp):
    client = await batch_app(start_app, worker_enabled=False)

    for cache_mode in ("development", "deduplication_only"):
        response = await post_comparison(client, processing_mode="batch", cache_mode=cache_mode)
        error = await assert_error(response, 400, "VALIDATION_ERROR")
        assert error["details"]["field"] == "cache_mode"
    assert await queue_depth(client) == 0


async def test_a_retried_batch_request_with_its_idempotency_key_is_the_same_request(
    start_app: StartApp,
):
    client = await batch_app(start_app, worker_enabled=False)
    headers = {"Idempotency-Key": "cj-batch-9-pair-4-5"}

    first = await post_comparison(client, processing_mode="batch", headers=headers)
    again = await post_comparison(client, processing_mode="batch", headers=headers)
    other_mode = await post_comparison(client, processing_mode="async", headers=headers)

    assert first.status_code == again.status_code == 202
    assert (await first.get_json())["queue_id"] == (await again.get_json())["queue_id"]
    await assert_error(other_mode, 409, "IDEMPOTENCY_KEY_REUSED")
    assert await queue_depth(client) == 1


def engine_lane() -> tuple[InMemoryRequestQueue, Provider]:
    """A batch lane the test claims from as the batch engine would, bound as `BatchQueue`
    (the `RequestQueue` of the app is built over it)."""
    lane = InMemoryRequestQueue(QueueSettings(lease_seconds=900.0), batch_lane=True)

    class EngineLaneDeps(Provider):
        scope = Scope.APP

        @provide
        def batch_queue(self) -> BatchQueue:
            return BatchQueue(lane)

    return lane, EngineLaneDeps()


async def test_a_batched_result_reads_like_any_queued_result_with_served_via(
    start_app: StartApp,
):
    lane, deps = engine_lane()
    client = await start_app(MOCK_BATCH, deps)
    queued = await (await post_comparison(client, processing_mode="batch")).get_json()
    watching = asyncio.create_task(receive_all(client, f"/api/v1/ws/status/{queued['queue_id']}"))
    [lease] = await lane.claim(LLMProviderType.MOCK, limit=1, owner="engine")
    assert lease.expires_at is not None

    result = make_result(lease.job, served_via=ServedVia.BATCH, cost_estimate=0.001)
    assert await lane.complete(lease, result)

    status = await wait_for_status(client, queued["status_url"], {"completed"})
    assert status["result"]["served_via"] == "batch"
    assert status["result"]["request_id"] == queued["queue_id"]
    messages = await watching
    assert messages[-1]["status"] == "completed"
    assert messages[-1]["result"]["served_via"] == "batch"


async def test_a_request_cancelled_while_batched_is_never_completed(start_app: StartApp):
    lane, deps = engine_lane()
    client = await start_app(MOCK_BATCH, deps, worker_enabled=False)
    queued = await (await post_comparison(client, processing_mode="batch")).get_json()
    [lease] = await lane.claim(LLMProviderType.MOCK, limit=1, owner="engine")
    processing = await (await client.get(queued["status_url"])).get_json()
    assert processing["status"] == "processing"

    cancelled = await client.delete(queued["status_url"])

    assert cancelled.status_code == 200
    assert (await cancelled.get_json())["status"] == "cancelled"
    late = make_result(lease.job, served_via=ServedVia.BATCH)
    assert not await lane.complete(lease, late)  # the batch's answer, after the cancel
    status = await (await client.get(queued["status_url"])).get_json()
    assert (status["status"], status["result"]) == ("cancelled", None)


async def test_the_embedded_default_serves_a_batch_request_through_the_mock_batch(
    start_app: StartApp,
):
    client = await start_app(
        batch_max_wait_seconds=0, batch_poll_seconds=0.05, mock_batch_seconds=0
    )

    queued = await (await post_comparison(client, processing_mode="batch")).get_json()
    status = await wait_for_status(client, queued["status_url"], {"completed"})

    assert status["result"]["served_via"] == ServedVia.BATCH.value
    assert status["result"]["model"] == "mock-rater-1"
