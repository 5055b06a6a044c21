"""Vendor answers that are not a judgement, through the whole app: HTTP API -> orchestrator ->
breaker -> adapter -> real SDK -> the fake upstream over real HTTP, and back."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest

from tests.fakes import RecordingEventDeps, RecordingPublisher
from tests.integration.conftest import StartApp
from tests.integration.providers.test_providers_over_http import (
    COMPARISON,
    THRESHOLD,
    VENDORS,
    Vendor,
    by_vendor,
    comparison,
    provider_entry,
    start,
)
from tests.support.fake_vendors import (
    FakeUpstream,
)

ANTHROPIC = next(v for v in VENDORS if v.name == "anthropic")


async def test_an_anthropic_200_of_the_wrong_shape_is_a_502_invalid_provider_response(
    start_app: StartApp,
    fake: FakeUpstream,
) -> None:
    client = await start(start_app, fake, ANTHROPIC, invalid_response_reasks=0)
    fake.fail_with("anthropic", '{"unexpected": "shape"}')

    response = await client.post(COMPARISON, json=comparison(ANTHROPIC))

    assert response.status_code == 502, await response.get_data(as_text=True)
    error = (await response.get_json())["error"]
    assert error["code"] == "INVALID_PROVIDER_RESPONSE"
    assert error["details"]["provider"] == "anthropic"
    assert len(fake.requests_for("anthropic")) == 1


def with_max_tokens(vendor: Vendor, max_tokens: int, **fields: Any) -> dict[str, Any]:
    body = comparison(vendor, **fields)
    body["llm_config_overrides"]["max_tokens_override"] = max_tokens
    return body


@by_vendor
async def test_an_answer_cut_off_at_the_callers_token_limit_is_a_422_not_a_provider_failure(
    start_app: StartApp,
    fake: FakeUpstream,
    vendor: Vendor,
) -> None:
    # A longer reset timeout: an opened breaker would still be open at the end.
    client = await start(start_app, fake, vendor, circuit_breaker_reset_timeout_seconds=30.0)
    fake.fail(vendor.name, "bad_request", times=1)  # one real failure, for `last_error`
    assert (await client.post(COMPARISON, json=comparison(vendor))).status_code == 502
    before = await provider_entry(client, vendor)
    assert before["last_error"]
    fake.fail(vendor.name, "max_tokens")

    for _ in range(THRESHOLD + 2):
        response = await client.post(COMPARISON, json=with_max_tokens(vendor, 1))
        assert response.status_code == 422, await response.get_data(as_text=True)
        error = (await response.get_json())["error"]
        assert error["code"] == "MAX_TOKENS_TOO_LOW"
        assert "max_tokens_override" in error["message"]
        assert error["details"]["max_tokens"] == 1
        assert error["details"]["field"] == "llm_config_overrides.max_tokens_override"

    # Never re-asked: one vendor call per request.
    assert len(fake.requests_for(vendor.name)) == 1 + THRESHOLD + 2
    after = await provider_entry(client, vendor)
    assert after["last_error"] == before["last_error"]
    assert after["last_failure_at"] == before["last_failure_at"]
    assert after["circuit_breaker_state"] == "closed"
    assert after["available"] is True
    metrics = await (await client.get("/metrics")).get_data(as_text=True)
    calls = "llm_provider_provider_calls_total"
    assert f'{calls}{{outcome="PROVIDER_BAD_REQUEST",provider="{vendor.name}"}} 1.0' in metrics
    assert "MAX_TOKENS_TOO_LOW" not in metrics  # not counted as a failed provider call


@by_vendor
async def test_a_queued_request_cut_off_at_the_token_limit_fails_with_max_tokens_too_low(
    start_app: StartApp,
    fake: FakeUpstream,
    vendor: Vendor,
) -> None:
    client = await start(start_app, fake, vendor)
    fake.fail(vendor.name, "max_tokens")

    response = await client.post(COMPARISON, json=with_max_tokens(vendor, 1, mode="async"))
    assert response.status_code == 202, await response.get_data(as_text=True)
    queue_id = (await response.get_json())["queue_id"]

    status: dict[str, Any] = {}
    deadline = time.monotonic() + 15.0
    while time.monotonic() < deadline:
        status = await (await client.get(f"/api/v1/status/{queue_id}")).get_json()
        if status["status"] not in ("queued", "processing"):
            break
        await asyncio.sleep(0.05)
    assert status["status"] == "failed", status
    assert status["error"]["code"] == "MAX_TOKENS_TOO_LOW"
    assert status["attempts"] == 1  # not retried: the same limit would cut it off again
    assert len(fake.requests_for(vendor.name)) == 1
    entry = await provider_entry(client, vendor)
    assert entry["last_error"] is None


LEAKY_KEY = "sk-proj-leakyKEY0123456789abcdefXYZ"
MASKED = f"{LEAKY_KEY[:6]}***{LEAKY_KEY[-4:]}"  # as the fake's 401 quotes it


@by_vendor
async def test_a_key_a_vendor_quotes_back_is_redacted_everywhere_it_goes(
    start_app: StartApp,
    fake: FakeUpstream,
    vendor: Vendor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    publisher = RecordingPublisher()
    client = await start_app(
        RecordingEventDeps(publisher),
        **{
            f"{vendor.name}_api_key": LEAKY_KEY,
            f"{vendor.name}_base_url": vendor.base_url(fake),
            f"{vendor.name}_timeout_seconds": 2.0,
            "anthropic_default_model": "claude-haiku-4-5",
        },
    )
    fake.fail(vendor.name, "auth_key_echo")

    with caplog.at_level(logging.DEBUG):
        response = await client.post(COMPARISON, json=comparison(vendor))
        entry = await provider_entry(client, vendor)

    assert fake.last(vendor.name).fault == "auth_key_echo"
    assert response.status_code == 502
    error = (await response.get_json())["error"]
    assert error["code"] == "PROVIDER_AUTH_ERROR"
    assert "Incorrect API key provided: [REDACTED]" in error["message"]
    failures = [
        envelope.data
        for _topic, envelope in publisher.events
        if envelope.event_type == "llm_provider.failure.v1"
    ]
    assert len(failures) == 1
    assert "[REDACTED]" in failures[0].message
    assert "[REDACTED]" in entry["last_error"]
    assert "Incorrect API key provided" in caplog.text  # the failure was logged
    seen = {
        "response": json.dumps(error),
        "event": failures[0].model_dump_json(),
        "last_error": entry["last_error"],
        "log": caplog.text,
    }
    for where, text in seen.items():
        assert MASKED not in text, where
        assert LEAKY_KEY not in text, where
