"""Server-side essay order with the real vendor SDKs, against a fake upstream that judges from
what it was shown: the provider sees about half the requests swapped, and every answer comes
back in the caller's terms (winner and justification), with `presentation_order` saying how
the essays were shown."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from services.llm_provider_service.providers.ability_marker import ability_marker
from tests.integration.conftest import StartApp
from tests.integration.providers.test_providers_over_http import (
    COMPARISON,
    Vendor,
    by_vendor,
    start,
)
from tests.support.fake_vendors import (
    FakeUpstream,
    RecordedRequest,
)
from tests.support.judges import first_presented_wins, higher_marker_wins

STRONG = f"Uniforms reduce bullying, as three studies show. {ability_marker(3.0)}"
WEAK = f"Uniforms are bad because I do not like them. {ability_marker(-3.0)}"
SWAP_TRIALS = 200
# |swapped - n/2| beyond four standard deviations: a correct service lands outside about
# six times in 100,000 runs.
SWAP_LIMIT = 4 * math.sqrt(SWAP_TRIALS / 4)


def pair(vendor: Vendor, *, essay_order: str | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_prompt": "Which essay argues its case better?",
        "essay_a": STRONG,
        "essay_b": WEAK,
        "processing_mode": "immediate",
        "llm_config_overrides": {"provider_override": vendor.name, "model_override": vendor.model},
        **fields,
    }
    if essay_order is not None:
        body["essay_order"] = essay_order
    return body


async def judged(client: Client, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async def one(body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(COMPARISON, json=body)
        assert response.status_code == 200, await response.get_data(as_text=True)
        result: dict[str, Any] = await response.get_json()
        return result

    return list(await asyncio.gather(*(one(body) for body in bodies)))


def strong_shown_first(record: RecordedRequest) -> bool:
    """Whether the vendor was shown the caller's essay_a (the strong one) as "Essay A"."""
    text = record.body.decode()
    return text.index("studies show") < text.index("do not like them")


@by_vendor
async def test_winners_and_justifications_come_back_in_the_callers_terms(
    start_app: StartApp, fake: FakeUpstream, vendor: Vendor
) -> None:
    fake.judge = higher_marker_wins  # the strong essay wins, whichever label it was shown as
    client = await start(start_app, fake, vendor)

    results = await judged(client, [pair(vendor) for _ in range(40)])

    orders = [r["presentation_order"] for r in results]
    assert set(orders) == {"as_sent", "swapped"}  # all alike: 2 in 2**40
    for result in results:
        assert result["winner"] == "Essay A", result  # the caller's strong essay, always
        assert result["justification"] == "Essay A is better argued than Essay B."
    shown = [strong_shown_first(record) for record in fake.requests_for(vendor.name)]
    assert sorted(shown) == sorted(order == "as_sent" for order in orders)


@by_vendor
async def test_about_half_are_swapped_and_the_report_counts_every_first_position_win(
    start_app: StartApp, fake: FakeUpstream, vendor: Vendor
) -> None:
    fake.judge = first_presented_wins  # total position bias: "Essay A" always wins
    client = await start(start_app, fake, vendor)

    results = await judged(client, [pair(vendor) for _ in range(SWAP_TRIALS)])

    swapped = [r["presentation_order"] == "swapped" for r in results]
    assert abs(sum(swapped) - SWAP_TRIALS / 2) <= SWAP_LIMIT, sum(swapped)
    for result, was_swapped in zip(results, swapped, strict=True):
        # The first-presented essay won: the caller's essay_b exactly when it was swapped.
        assert result["winner"] == ("Essay B" if was_swapped else "Essay A")
        loser = "Essay A" if was_swapped else "Essay B"
        assert result["justification"] == f"{result['winner']} is better argued than {loser}."
    report = await (await client.get("/api/v1/position-bias")).get_json()
    assert report["models"] == [
        {
            "provider": vendor.name,
            "model": vendor.model,
            "judgements": SWAP_TRIALS,
            "first_position_wins": SWAP_TRIALS,
            "first_position_share": 1.0,
            "ci95_low": pytest.approx(0.9812, abs=1e-4),
            "ci95_high": 1.0,
            "p_value": pytest.approx(2 * 0.5**SWAP_TRIALS, rel=1e-6),
        }
    ]


@by_vendor
async def test_as_sent_is_never_swapped_nor_counted(
    start_app: StartApp, fake: FakeUpstream, vendor: Vendor
) -> None:
    fake.judge = first_presented_wins
    client = await start(start_app, fake, vendor)

    results = await judged(client, [pair(vendor, essay_order="as_sent") for _ in range(40)])

    assert {r["presentation_order"] for r in results} == {"as_sent"}
    assert {r["winner"] for r in results} == {"Essay A"}
    assert all(strong_shown_first(record) for record in fake.requests_for(vendor.name))
    report = await (await client.get("/api/v1/position-bias")).get_json()
    assert report == {"models": []}


@by_vendor
async def test_a_retry_with_the_same_idempotency_key_keeps_its_order(
    start_app: StartApp, fake: FakeUpstream, vendor: Vendor
) -> None:
    fake.judge = first_presented_wins
    client = await start(start_app, fake, vendor)
    keys = [f"essay-order-{vendor.name}-{i}" for i in range(12)]

    async def post(key: str) -> dict[str, Any]:
        response = await client.post(
            COMPARISON, json=pair(vendor), headers={"Idempotency-Key": key}
        )
        assert response.status_code == 200
        body: dict[str, Any] = await response.get_json()
        return body

    first = [await post(key) for key in keys]
    again = [await post(key) for key in keys]

    assert [r["request_id"] for r in again] == [r["request_id"] for r in first]
    assert [r["presentation_order"] for r in again] == [r["presentation_order"] for r in first]
    assert [r["winner"] for r in again] == [r["winner"] for r in first]
    assert len(fake.requests_for(vendor.name)) == len(keys)  # one judgement per key
