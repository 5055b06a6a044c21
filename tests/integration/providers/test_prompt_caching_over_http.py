"""Prompt blocks with the real vendor SDKs: cacheable blocks become Anthropic `cache_control`
breakpoints with their TTLs and an OpenAI `prompt_cache_key`; the token usage reports cache
writes, then reads, and the cost prices them. Only input tokens are cached: every answer is
a fresh call (the fake counts them)."""

from __future__ import annotations

from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from tests.contract.huleedu_consumer import ASSIGNMENT, JUDGE_INSTRUCTIONS, RUBRIC, cj_request
from tests.integration.conftest import StartApp
from tests.support.fake_vendors import (
    FakeUpstream,
)

COMPARISON = "/api/v1/comparison"


async def start(start_app: StartApp, fake: FakeUpstream, vendor: str, attribute: str) -> Client:
    return await start_app(
        **{
            f"{vendor}_api_key": "test-key",
            f"{vendor}_base_url": getattr(fake, attribute),
            "anthropic_default_model": "claude-sonnet-4-6",
        }
    )


async def judge(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(COMPARISON, json={**body, "processing_mode": "immediate"})
    result: dict[str, Any] = await response.get_json()
    assert response.status_code == 200, result
    return result


def cache_controls(payload: dict[str, Any]) -> list[tuple[str, Any]]:
    """(text start, cache_control) of every block sent, system then the user message."""
    blocks = [*payload["system"], *payload["messages"][0]["content"]]
    return [(b["text"][:12], b.get("cache_control")) for b in blocks]


async def test_anthropic_caches_the_blocks_prefix_and_reads_it_on_the_next_call(
    start_app: StartApp, fake: FakeUpstream
) -> None:
    client = await start(start_app, fake, "anthropic", "anthropic_base_url")
    body = cj_request(provider="anthropic", model="claude-sonnet-4-6")

    first = await judge(client, body)
    second = await judge(
        client,
        cj_request(
            "Another essay.", "And one more.", provider="anthropic", model="claude-sonnet-4-6"
        ),
    )

    # The cacheable prefix (judge instructions, assignment, rubric: all 1h) ends in one
    # breakpoint with their TTL; the essay pair and what follows it are not cached.
    sent = fake.requests_for("anthropic")
    assert len(sent) == 2  # two fresh calls
    assert cache_controls(sent[0].json) == [
        (JUDGE_INSTRUCTIONS[:12], None),
        (ASSIGNMENT[:12], None),
        (RUBRIC[:12], {"type": "ephemeral", "ttl": "1h"}),
        ("**Essay A (I", None),
        ("Respond with", None),
    ]
    written, read = first["token_usage"], second["token_usage"]
    assert written["cache_write_tokens"] > 0
    assert written["cache_write_1h_tokens"] == written["cache_write_tokens"]
    assert written["cached_prompt_tokens"] == 0
    assert read["cached_prompt_tokens"] == written["cache_write_tokens"]
    assert read["cache_write_tokens"] == 0
    assert second["cost_estimate"] < first["cost_estimate"]  # reads cost 0.1x, writes 2x
    assert first["winner"] in ("Essay A", "Essay B")


async def test_anthropic_puts_a_breakpoint_with_its_ttl_at_each_ttl_change(
    start_app: StartApp, fake: FakeUpstream
) -> None:
    client = await start(start_app, fake, "anthropic", "anthropic_base_url")
    body = {
        "user_prompt": "Which essay is better?",
        "essay_a": "Cats.",
        "essay_b": "Dogs.",
        "llm_config_overrides": {"provider_override": "anthropic"},
        "prompt_blocks": [
            {"target": "system", "content": "Long instructions.", "cacheable": True, "ttl": "1h"},
            {"target": "user_content", "content": "A rubric.", "cacheable": True, "ttl": "5m"},
            {"target": "user_content", "content": "The task.", "cacheable": True},
        ],
    }

    await judge(client, body)

    marks = [mark for _, mark in cache_controls(fake.last("anthropic").json)]
    assert marks == [
        {"type": "ephemeral", "ttl": "1h"},
        None,
        {"type": "ephemeral", "ttl": "5m"},
        None,  # the essays, appended: never cached
        None,
    ]


async def test_openai_gets_one_cache_key_per_shared_prefix(
    start_app: StartApp, fake: FakeUpstream
) -> None:
    client = await start(start_app, fake, "openai", "openai_base_url")

    await judge(client, cj_request())
    await judge(client, cj_request("Another essay.", "And one more."))
    await judge(client, {**cj_request(), "prompt_blocks": None})  # no blocks: no key

    keys = [r.json.get("prompt_cache_key") for r in fake.requests_for("openai")]
    assert keys[0] is not None
    assert keys[0].startswith("llmps-")
    assert keys[1] == keys[0]  # the same rubric, other essays: the same key
    assert keys[2] is None


@pytest.mark.parametrize(
    ("vendor", "attribute", "model"),
    [
        ("google", "google_base_url", "gemini-2.5-flash"),
        ("openrouter", "openrouter_base_url", "openai/gpt-5.1"),
    ],
)
async def test_other_vendors_get_the_blocks_as_system_and_user_text(
    start_app: StartApp, fake: FakeUpstream, vendor: str, attribute: str, model: str
) -> None:
    client = await start(start_app, fake, vendor, attribute)
    body = cj_request(provider=vendor, model=model)

    await judge(client, body)

    sent = fake.last(vendor).body.decode()
    blocks = body["prompt_blocks"]
    assert blocks[0]["content"][:40] in sent  # the system block
    assert all(b["content"][:30].replace("\n", "\\n") in sent for b in blocks[1:])
    assert "content_hash" not in sent  # the sender's own, never sent to a vendor


async def test_anthropic_blocks_read_as_the_joined_text_and_a_plain_prompt_stays_one_string(
    start_app: StartApp, fake: FakeUpstream
) -> None:
    client = await start(start_app, fake, "anthropic", "anthropic_base_url")
    body = cj_request(provider="anthropic", model="claude-sonnet-4-6")
    plain = {
        "user_prompt": "Which essay is better?",
        "essay_a": "Cats.",
        "essay_b": "Dogs.",
        "essay_order": "as_sent",
        "llm_config_overrides": {"provider_override": "anthropic"},
    }

    await judge(client, body)
    await judge(client, plain)

    blocked, simple = (r.json for r in fake.requests_for("anthropic"))
    user_blocks = blocked["messages"][0]["content"]
    assert "".join(b["text"] for b in user_blocks) == "\n\n".join(
        b["content"] for b in body["prompt_blocks"][1:]
    )
    assert simple["messages"][0]["content"] == (
        "Which essay is better?\n\nEssay A:\nCats.\n\nEssay B:\nDogs."
    )
