"""`prompt_blocks` through the HTTP API: refused when malformed (400 naming the block), the
prompt when given (surviving the queue), and counterbalanced when two blocks are marked as
the essays."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from services.llm_provider_service.providers.ability_marker import ability_marker
from services.llm_provider_service.settings import Settings
from tests.contract.huleedu_consumer import cj_request
from tests.integration.conftest import StartApp
from tests.integration.test_http_api import (
    RecordingMockDeps,
    RecordingMockProvider,
    wait_for_status,
)

COMPARISON = "/api/v1/comparison"
TAG = re.compile(r"^\[mock-bt: (first|second) won")


def block(target: str = "user_content", content: str = "text", **fields: Any) -> dict[str, Any]:
    return {"target": target, "content": content, **fields}


@pytest.mark.parametrize(
    ("blocks", "field", "error_type"),
    [
        ([block(target="assistant")], "prompt_blocks.0.target", "enum"),
        ([block(ttl="10m")], "prompt_blocks.0.ttl", "enum"),
        ([block(content="  ")], "prompt_blocks.0.content", "value_error"),
        ([block(essay="c")], "prompt_blocks.0.essay", "literal_error"),
        ([block(colour="red")], "prompt_blocks.0.colour", "extra_forbidden"),
        ([block(cacheable="yes")], "prompt_blocks.0.cacheable", "bool_type"),
        ([], "prompt_blocks", "too_short"),
        (
            [block(essay="a"), block(essay="a")],
            "prompt_blocks",
            "prompt_blocks_essay_twice",
        ),
        (
            # In the order sent (system first) a 1h TTL follows a 5m one: Anthropic refuses.
            [
                block(cacheable=True, ttl="1h"),
                block(target="system", cacheable=True, ttl="5m"),
            ],
            "prompt_blocks",
            "prompt_blocks_ttl_order",
        ),
    ],
)
async def test_a_malformed_block_is_a_400_naming_it(
    start_app: StartApp, blocks: list[dict[str, Any]], field: str, error_type: str
) -> None:
    client = await start_app()
    response = await client.post(
        COMPARISON, json={"user_prompt": "Which is better?", "prompt_blocks": blocks}
    )
    body = await response.get_json()

    assert response.status_code == 400, body
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert body["error"]["details"]["field"] == field
    assert body["error"]["details"]["errors"][0]["type"] == error_type


async def test_blocks_are_the_prompt_and_survive_the_queue(
    start_app: StartApp, settings: Settings
) -> None:
    recorder = RecordingMockProvider(settings.mock)
    client = await start_app(RecordingMockDeps(recorder), settings=settings)
    body = {**cj_request(provider="mock", model="mock-rater-1"), "processing_mode": "async"}

    response = await client.post(COMPARISON, json=body)
    assert response.status_code == 202
    status_url = (await response.get_json())["status_url"]
    await wait_for_status(client, status_url, {"completed"})

    [(prompt, _)] = recorder.calls
    blocks = body["prompt_blocks"]
    assert prompt.system_prompt == blocks[0]["content"]
    assert prompt.user_prompt == "\n\n".join(b["content"] for b in blocks[1:])
    assert [part.cache_ttl for part in prompt.cached_prefix] == ["1h", "1h", "1h"]


async def test_essay_blocks_are_counterbalanced_and_mapped_back(start_app: StartApp) -> None:
    client = await start_app(mock_rater="bradley_terry", mock_position_bias=0.8)
    blocks = [
        block(target="system", content="Judge the essays.", cacheable=True),
        block(content="Essay A:", cacheable=True),
        block(content=f"Cats are independent. {ability_marker(1.0)}", essay="a"),
        block(content="Essay B:"),
        block(content=f"Dogs are loyal. {ability_marker(-1.0)}", essay="b"),
    ]
    body = {"user_prompt": "Which essay is better?", "prompt_blocks": blocks}

    async def judged() -> dict[str, Any]:
        response = await client.post(COMPARISON, json=body)
        assert response.status_code == 200
        result: dict[str, Any] = await response.get_json()
        return result

    results = await asyncio.gather(*(judged() for _ in range(40)))

    assert {r["presentation_order"] for r in results} == {"as_sent", "swapped"}
    for result in results:
        tag = TAG.match(result["justification"])
        assert tag is not None
        caller_a_won = result["winner"] == "Essay A"
        shown_first = result["presentation_order"] == "as_sent"
        assert (tag.group(1) == "first") == (caller_a_won == shown_first)
    report = await (await client.get("/api/v1/position-bias")).get_json()
    assert report["models"][0]["judgements"] == 40
