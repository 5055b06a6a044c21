"""Server-side essay order through the HTTP API, with the mock's Bradley-Terry rater: every
result says how the essays were shown, answers stay in the caller's terms, and the
position-bias report counts exactly the first-position wins the answers show."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from services.llm_provider_service.providers.ability_marker import ability_marker
from tests.integration.conftest import StartApp

COMPARISON = "/api/v1/comparison"
TAG = re.compile(r"^\[mock-bt: (first|second) won")
BIAS = 0.8


async def start(start_app: StartApp, **values: Any) -> Client:
    return await start_app(mock_rater="bradley_terry", mock_position_bias=BIAS, **values)


def pair(theta_a: float = 0.4, theta_b: float = -0.4, **fields: Any) -> dict[str, Any]:
    return {
        "user_prompt": "Which essay argues better?",
        "essay_a": f"Cats are independent. {ability_marker(theta_a)}",
        "essay_b": f"Dogs are loyal. {ability_marker(theta_b)}",
        **fields,
    }


async def post(client: Client, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = await client.post(COMPARISON, json=body)
    assert response.status_code == status, await response.get_data(as_text=True)
    payload: dict[str, Any] = await response.get_json()
    return payload


def presented_winner(result: dict[str, Any]) -> str:
    """Which presented position won, from the caller's winner and the order it was shown in."""
    caller_a_won = result["winner"] == "Essay A"
    shown_first = result["presentation_order"] == "as_sent"  # essay_a was shown first
    return "first" if caller_a_won == shown_first else "second"


@pytest.mark.parametrize("value", ["random", "swapped", "AS_SENT", 1, None, ""])
async def test_an_unknown_essay_order_is_a_400_naming_the_field(
    start_app: StartApp, value: object
) -> None:
    client = await start(start_app)
    body = await post(client, pair(essay_order=value), status=400)
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert body["error"]["details"]["field"] == "essay_order"


async def test_every_answer_maps_back_from_what_the_rater_saw(start_app: StartApp) -> None:
    client = await start(start_app)
    results = await asyncio.gather(*(post(client, pair()) for _ in range(60)))

    assert {r["presentation_order"] for r in results} == {"as_sent", "swapped"}
    for result in results:
        tag = TAG.match(result["justification"])
        assert tag is not None, result["justification"]
        # The rater's own record of the position that won agrees with the mapped answer.
        assert tag.group(1) == presented_winner(result), result


async def test_the_report_counts_exactly_the_first_position_wins_the_answers_show(
    start_app: StartApp,
) -> None:
    client = await start(start_app)
    randomized = await asyncio.gather(*(post(client, pair()) for _ in range(80)))
    as_sent = await asyncio.gather(*(post(client, pair(essay_order="as_sent")) for _ in range(20)))
    one_essay = await post(client, {"user_prompt": "Rate it.", "essay_a": "Only one."})

    assert {r["presentation_order"] for r in as_sent} == {"as_sent"}
    assert one_essay["presentation_order"] == "as_sent"
    report = await (await client.get("/api/v1/position-bias")).get_json()
    [entry] = report["models"]
    wins = sum(presented_winner(r) == "first" for r in randomized)
    assert (entry["provider"], entry["model"]) == ("mock", "mock-rater-1")
    assert (entry["judgements"], entry["first_position_wins"]) == (80, wins)
    assert entry["first_position_share"] == pytest.approx(wins / 80)
    assert entry["ci95_low"] <= wins / 80 <= entry["ci95_high"]
    assert 0.0 <= entry["p_value"] <= 1.0
    metrics = await (await client.get("/metrics")).get_data(as_text=True)
    first = (
        'llm_provider_winner_position_total{model="mock-rater-1",position="first",provider="mock"}'
    )
    assert f"{first} {float(wins)}" in metrics


async def test_a_queued_result_carries_its_order_and_the_caller_terms(
    start_app: StartApp,
) -> None:
    client = await start(start_app)
    queued = [await post(client, pair(processing_mode="async"), status=202) for _ in range(12)]

    results = []
    for item in queued:
        for _ in range(200):
            status = await (await client.get(item["status_url"])).get_json()
            if status["status"] == "completed":
                results.append(status["result"])
                break
            await asyncio.sleep(0.02)
    assert len(results) == len(queued)
    for result in results:
        tag = TAG.match(result["justification"])
        assert tag is not None
        assert tag.group(1) == presented_winner(result)


async def test_the_openapi_document_describes_the_report(start_app: StartApp) -> None:
    client = await start(start_app)
    spec = await (await client.get("/openapi.json")).get_json()
    operation = spec["paths"]["/api/v1/position-bias"]["get"]
    assert "200" in operation["responses"]
    body = spec["paths"]["/api/v1/comparison"]["post"]["requestBody"]
    request = body["content"]["application/json"]["schema"]["properties"]
    assert request["essay_order"]["default"] == "randomized"
    result = spec["components"]["schemas"]["ComparisonResult"]["properties"]
    assert "presentation_order" in result
