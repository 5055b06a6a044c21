"""The in-memory queue loses what it accepted when the process stops: it says so, by id."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from services.llm_provider_service.app import create_app
from services.llm_provider_service.settings import Settings

COMPARISON = "/api/v1/comparison"
QUEUE_LOGGER = "services.llm_provider_service.queue.memory"


def body(**fields: Any) -> dict[str, Any]:
    return {
        "user_prompt": "Which essay is better argued?",
        "essay_a": "A careful argument.",
        "essay_b": "A loud assertion.",
        **fields,
    }


async def test_stopping_with_accepted_requests_logs_how_many_and_their_ids(
    make_settings: Any, caplog: pytest.LogCaptureFixture
):
    settings: Settings = make_settings(worker_enabled=False)
    test_app = create_app(settings).test_app()
    await test_app.startup()
    client = test_app.test_client()
    accepted = [
        await (await client.post(COMPARISON, json=body(processing_mode="async"))).get_json()
        for _ in range(3)
    ]
    answered = await client.post(COMPARISON, json=body(processing_mode="immediate"))
    assert answered.status_code == 200

    with caplog.at_level(logging.WARNING, logger=QUEUE_LOGGER):
        await test_app.shutdown()

    warnings = [
        r for r in caplog.records if r.name == QUEUE_LOGGER and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "3 accepted requests" in message
    for queued in accepted:
        assert queued["queue_id"] in message


async def test_stopping_with_nothing_accepted_logs_no_warning(
    make_settings: Any, caplog: pytest.LogCaptureFixture
):
    settings: Settings = make_settings(worker_enabled=False)
    test_app = create_app(settings).test_app()
    await test_app.startup()
    client = test_app.test_client()
    assert (
        await client.post(COMPARISON, json=body(processing_mode="immediate"))
    ).status_code == 200

    with caplog.at_level(logging.WARNING, logger=QUEUE_LOGGER):
        await test_app.shutdown()

    assert [r for r in caplog.records if r.name == QUEUE_LOGGER] == []
