"""Each real vendor through the whole app: HTTP API -> orchestrator -> breaker -> adapter ->
real SDK client -> the fake upstream over real HTTP, and back. Also the breaker on real HTTP
failures and the outage story (queue while the vendor is down, drain after it heals)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from common_core.pass_through import PassThrough
from services.llm_provider_service.providers.judgement import JUDGEMENT_SCHEMA, TOOL_NAME
from services.llm_provider_service.providers.price_list import DEFAULT_PRICES
from tests.integration.conftest import StartApp
from tests.support.fake_vendors import (
    FakeUpstream,
    RecordedRequest,
    camel_schema,
)

COMPARISON = "/api/v1/comparison"
PROVIDERS = "/api/v1/providers"
TEMPERATURE = 0.3
MAX_TOKENS = 600
UNPRICED_MODEL = "unpriced-test-model"
THRESHOLD = 3
RESULT_FIELDS = {
    "request_id",
    "correlation_id",
    "winner",
    "justification",
    "confidence",
    "provider",
    "model",
    "response_time_ms",
    "token_usage",
    "cost_estimate",
    "trace_id",
    *PassThrough.model_fields,  # the caller's own fields, echoed: metadata
    "served_from_cache",
    "provider_request_id",
    "completed_at",
    "presentation_order",
    "served_via",
}


@dataclass(frozen=True)
class Vendor:
    name: str
    base_url: Callable[[FakeUpstream], str]
    model: str
    """A priced model (in DEFAULT_PRICES) that takes a temperature and `max_tokens` as sent."""


VENDORS = [
    Vendor("anthropic", lambda fake: fake.anthropic_base_url, "claude-haiku-4-5"),
    Vendor("openai", lambda fake: fake.openai_base_url, "gpt-4.1-mini"),
    Vendor("openrouter", lambda fake: fake.openrouter_base_url, "openai/gpt-5-mini"),
    Vendor("google", lambda fake: fake.google_base_url, "gemini-2.5-flash-lite"),
]
by_vendor = pytest.mark.parametrize("vendor", VENDORS, ids=[v.name for v in VENDORS])


async def start(start_app: StartApp, fake: FakeUpstream, vendor: Vendor, **values: Any) -> Client:
    settings: dict[str, Any] = {
        f"{vendor.name}_api_key": "test-key",
        f"{vendor.name}_base_url": vendor.base_url(fake),
        f"{vendor.name}_timeout_seconds": 2.0,
        # The service default "claude-sonnet-4-5" is on the anthropic SDK's deprecation list,
        # whose DeprecationWarning is an error under `filterwarnings = error`.
        "anthropic_default_model": "claude-haiku-4-5",
        "circuit_breaker_failure_threshold": THRESHOLD,
        "circuit_breaker_reset_timeout_seconds": 0.5,
        "queue_poll_interval_seconds": 0.05,
        "queue_retry_base_seconds": 0.05,
        "queue_retry_max_seconds": 0.2,
        "queue_max_attempts": 50,
        **values,
    }
    return await start_app(**settings)


def comparison(
    vendor: Vendor, *, model: str | None = None, mode: str = "immediate"
) -> dict[str, Any]:
    return {
        "user_prompt": "Which essay argues its case better?",
        "essay_a": "School uniforms reduce bullying, as three studies show.",
        "essay_b": "Uniforms are bad because I do not like them.",
        "processing_mode": mode,
        "llm_config_overrides": {
            "provider_override": vendor.name,
            "model_override": model or vendor.model,
            "temperature_override": TEMPERATURE,
            "max_tokens_override": MAX_TOKENS,
        },
    }


def sent(vendor: Vendor, record: RecordedRequest) -> dict[str, Any]:
    """The model, temperature, max tokens and judgement schema a vendor request carried."""
    body = record.json
    assert isinstance(body, dict), record
    if vendor.name == "anthropic":
        tools = body["tools"]
        assert [t["name"] for t in tools] == [TOOL_NAME]
        assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
        return {
            "model": body["model"],
            "temperature": body.get("temperature"),
            "max_tokens": body["max_tokens"],
            "schema": tools[0]["input_schema"],
        }
    if vendor.name == "google":
        config = camel_schema(body["generationConfig"])
        return {
            "model": record.model,
            "temperature": config.get("temperature"),
            "max_tokens": config.get("maxOutputTokens"),
            "schema": config.get("responseJsonSchema"),
        }
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == TOOL_NAME
    return {
        "model": body["model"],
        "temperature": body.get("temperature"),
        "max_tokens": body.get("max_tokens") or body.get("max_completion_tokens"),
        "schema": response_format["json_schema"]["schema"],
    }


def assert_carried_overrides(vendor: Vendor, record: RecordedRequest, model: str) -> None:
    seen = sent(vendor, record)
    assert seen["model"] == model
    assert seen["temperature"] == pytest.approx(TEMPERATURE)
    assert seen["max_tokens"] == MAX_TOKENS
    assert seen["schema"]["properties"].keys() == JUDGEMENT_SCHEMA["properties"].keys()
    assert seen["schema"]["properties"]["winner"]["enum"] == ["Essay A", "Essay B"]
    assert sorted(seen["schema"]["required"]) == sorted(JUDGEMENT_SCHEMA["required"])


async def provider_entry(client: Client, vendor: Vendor) -> dict[str, Any]:
    response = await client.get(PROVIDERS)
    assert response.status_code == 200
    body = await response.get_json()
    entry: dict[str, Any] = next(p for p in body["providers"] if p["name"] == vendor.name)
    return entry


# ---- the happy path ---------------------------------------------------------------------------


@by_vendor
async def test_a_comparison_reaches_the_vendor_with_every_override(
    start_app: StartApp, fake: FakeUpstream, vendor: Vendor
) -> None:
    client = await start(start_app, fake, vendor)

    response = await client.post(COMPARISON, json=comparison(vendor))

    assert response.status_code == 200, await response.get_data(as_text=True)
    body = await response.get_json()
    assert set(body) == RESULT_FIELDS
    assert body["provider"] == vendor.name
    assert body["model"] == vendor.model
    assert body["winner"] in ("Essay A", "Essay B")
    assert 1 <= body["confidence"] <= 5
    assert body["provider_request_id"]
    assert body["served_from_cache"] is False
    usage = body["token_usage"]
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] >= usage["prompt_tokens"] + usage["completion_tokens"]
    assert vendor.model in DEFAULT_PRICES
    assert isinstance(body["cost_estimate"], float)
    assert body["cost_estimate"] >= 0
    records = fake.requests_for(vendor.name)
    assert len(records) == 1
    key_headers = ("authorization", "x-api-key", "x-goog-api-key")
    assert any("test-key" in records[0].headers.get(h, "") for h in key_headers)
    assert_carried_overrides(vendor, records[0], vendor.model)


@by_vendor
async def test_an_unpriced_model_has_a_null_cost_estimate(
    start_app: StartApp, fake: FakeUpstream, vendor: Vendor
) -> None:
    client = await start(start_app, fake, vendor)

    response = await client.post(COMPARISON, json=comparison(vendor, model=UNPRICED_MODEL))

    assert response.status_code == 200, await response.get_data(as_text=True)
    body = await response.get_json()
    assert body["model"] == UNPRICED_MODEL
    assert body["cost_estimate"] is None
    assert fake.last(vendor.name).model == UNPRICED_MODEL


@by_vendor
async def test_the_vendor_is_listed_available_and_its_test_call_succeeds(
    start_app: StartApp, fake: FakeUpstream, vendor: Vendor
) -> None:
    client = await start(start_app, fake, vendor)

    entry = await provider_entry(client, vendor)
    assert entry["enabled"] is True
    assert entry["configured"] is True
    assert entry["available"] is True
    assert entry["circuit_breaker_state"] == "closed"

    response = await client.post(f"{PROVIDERS}/{vendor.name}/test")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["success"] is True, body
    assert body["provider"] == vendor.name
    assert len(fake.requests_for(vendor.name)) == 1
    assert (await provider_entry(client, vendor))["last_success_at"] is not None


# ---- the breaker on real HTTP failures ---------------------------------------------------------


@by_vendor
async def test_503s_open_the_breaker_which_then_fails_fast_without_calling(
    start_app: StartApp, fake: FakeUpstream, vendor: Vendor
) -> None:
    # A longer reset timeout: the open state must outlast the assertions below.
    client = await start(start_app, fake, vendor, circuit_breaker_reset_timeout_seconds=5.0)
    fake.fail(vendor.name, "unavailable")

    for _ in range(THRESHOLD):
        response = await client.post(COMPARISON, json=comparison(vendor))
        assert response.status_code == 503
        error = (await response.get_json())["error"]
        assert error["code"] == "PROVIDER_UNAVAILABLE"
        assert error["details"]["reason"] == "server_error"
        assert error["details"]["upstream_status"] == 503
    assert len(fake.requests_for(vendor.name)) == THRESHOLD

    entry = await provider_entry(client, vendor)
    assert entry["circuit_breaker_state"] == "open"
    assert entry["available"] is False
    assert entry["last_failure_at"] is not None

    for _ in range(2):
        response = await client.post(COMPARISON, json=comparison(vendor))
        assert response.status_code == 503
        assert response.headers.get("Retry-After")
        error = (await response.get_json())["error"]
        assert error["code"] == "PROVIDER_UNAVAILABLE"
        assert error["details"]["reason"] == "circuit_open"
    assert len(fake.requests_for(vendor.name)) == THRESHOLD  # nothing more reached the vendor


@by_vendor
async def test_auth_failures_never_open_the_breaker(
    start_app: StartApp, fake: FakeUpstream, vendor: Vendor
) -> None:
    client = await start(start_app, fake, vendor)
    fake.fail(vendor.name, "auth")
    attempts = THRESHOLD + 2

    for _ in range(attempts):
        response = await client.post(COMPARISON, json=comparison(vendor))
        assert response.status_code == 502
        error = (await response.get_json())["error"]
        assert error["code"] == "PROVIDER_AUTH_ERROR"

    assert len(fake.requests_for(vendor.name)) == attempts  # every one reached the vendor
    entry = await provider_entry(client, vendor)
    assert entry["circuit_breaker_state"] == "closed"
    assert entry["available"] is True


# ---- the outage story --------------------------------------------------------------------------


@by_vendor
async def test_requests_queued_during_an_outage_complete_after_it_heals_with_their_overrides(
    start_app: StartApp, fake: FakeUpstream, vendor: Vendor
) -> None:
    client = await start(start_app, fake, vendor)
    fake.fail(vendor.name, "server_error")

    queue_ids = []
    for _ in range(THRESHOLD + 2):  # some fail on the call, the rest meet the open breaker
        response = await client.post(
            COMPARISON, json=comparison(vendor, mode="queue_if_unavailable")
        )
        assert response.status_code == 202, await response.get_data(as_text=True)
        queue_ids.append((await response.get_json())["queue_id"])
    failed_calls = len(fake.requests_for(vendor.name))
    assert failed_calls >= THRESHOLD

    fake.heal()
    results: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 15.0
    while len(results) < len(queue_ids) and time.monotonic() < deadline:
        for queue_id in queue_ids:
            if queue_id in results:
                continue
            status = await (await client.get(f"/api/v1/status/{queue_id}")).get_json()
            assert status["status"] in ("queued", "processing", "completed"), status
            if status["status"] == "completed":
                results[queue_id] = status["result"]
        await asyncio.sleep(0.05)
    assert set(results) == set(queue_ids), "not every queued request completed in time"

    for result in results.values():
        assert result["provider"] == vendor.name
        assert result["model"] == vendor.model
        assert result["provider_request_id"]
        assert isinstance(result["cost_estimate"], float)
    records = fake.requests_for(vendor.name)
    answered = [r for r in records if r.fault is None]
    assert len(answered) >= len(queue_ids)
    for record in records:  # the failed calls and the queued calls alike
        assert_carried_overrides(vendor, record, vendor.model)
