"""Issue 17 over HTTP with the service as a process: batch requests are answered 202, sent in
one Anthropic Message Batch (one entry each, replicates included) through the real SDK, and
each completes once from its own row, rows out of order, at the batch lane's price; a batch
request the service has no Batch API for is a 400 BATCH_NOT_SUPPORTED."""

from __future__ import annotations

import httpx
import pytest

from common_core.api_models import TokenUsage
from common_core.enums import LLMProviderType, ServedVia
from services.llm_provider_service.providers.pricing import PriceTable
from tests.integration.crash.batch.drill import (
    batch_body,
    custom_ids,
    event_counts,
    hexes,
    post_batch,
    until_batches,
    until_results,
    until_statuses,
)
from tests.support.fake_vendors import FakeUpstream
from tests.support.processes import ProcessPool

pytestmark = pytest.mark.timeout(120)

REQUESTS = 6


async def test_batch_requests_complete_once_each_from_one_provider_batch(
    batch_processes: ProcessPool, clean_fake_upstream: FakeUpstream
) -> None:
    fake = clean_fake_upstream
    service = batch_processes.start("service", "serve")
    await service.wait_ready()

    ids = await post_batch(service, REQUESTS)  # the same pair each time: replicates
    (batch_id,) = await until_batches(fake, 1)
    entries = custom_ids(fake, batch_id)
    assert sorted(entries) == sorted(hexes(ids)), "one entry per request, each its own id"
    fake.anthropic_batches.end(batch_id)  # every row succeeded, in shuffled order
    lines = [line["custom_id"] for line in fake.anthropic_batches.batch(batch_id).lines]
    assert lines != entries, "the fake wrote the rows out of order"

    bodies = await until_statuses(service, ids, {"completed", "failed", "expired", "cancelled"})

    assert [b["status"] for b in bodies] == ["completed"] * REQUESTS, bodies
    prices = PriceTable()
    for queue_id, body in zip(ids, bodies, strict=True):
        result = body["result"]
        assert result["request_id"] == queue_id
        assert result["served_via"] == ServedVia.BATCH.value
        usage = TokenUsage.model_validate(result["token_usage"])
        assert usage.prompt_tokens > 0
        lane = prices.estimate(
            result["model"], usage, lane=ServedVia.BATCH, provider=LLMProviderType.ANTHROPIC
        )
        realtime = prices.estimate(result["model"], usage)
        assert lane is not None
        assert realtime is not None
        assert result["cost_estimate"] == pytest.approx(lane)
        assert lane == pytest.approx(realtime / 2, rel=1e-6)
    once = dict.fromkeys(ids, 1)
    assert event_counts(batch_processes, "request_completed", ids) == once
    results = await until_results(batch_processes, ids)
    assert {i: len(results.get(i, [])) for i in ids} == once
    for queue_id, body in zip(ids, bodies, strict=True):
        (event,) = results[queue_id]
        assert event["served_via"] == "batch"
        assert event["cost_estimate"] == body["result"]["cost_estimate"]
        assert event["winner"] == body["result"]["winner"]
    assert len(fake.anthropic_batches.calls("create")) == 1
    assert fake.requests == [], "no realtime call was made for a batch request"


async def test_a_batch_request_the_service_has_no_batch_api_for_is_refused(
    batch_processes: ProcessPool, clean_fake_upstream: FakeUpstream
) -> None:
    service = batch_processes.start(
        "service",
        "serve",
        google_api_key="drill-gemini-key",
        google_base_url=clean_fake_upstream.google_base_url,
        batch_providers='["anthropic","openai","google"]',
    )
    await service.wait_ready()

    async with httpx.AsyncClient(base_url=service.base_url, timeout=10.0) as http:
        # The mock provider is configured (ENVIRONMENT=testing) but not in BATCH_PROVIDERS.
        provider = await http.post("/api/v1/comparison", json=batch_body("mock"))
        # Gemini's Batch API takes gemini-* models only.
        overrides = {"provider_override": "google", "model_override": "claude-sonnet-4-6"}
        model = await http.post(
            "/api/v1/comparison", json={**batch_body(), "llm_config_overrides": overrides}
        )

    for answer, named in ((provider, "mock"), (model, "claude-sonnet-4-6")):
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["code"] == "BATCH_NOT_SUPPORTED", error
        assert named in error["message"], error
        assert error["correlation_id"]
    assert clean_fake_upstream.requests == []
