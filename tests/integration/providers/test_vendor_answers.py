"""What the vendor adapters make of whatever a vendor answers: each through its real SDK over
real HTTP (the fake upstream), and through the whole app.

- Any 200 body (random JSON shapes, a valid answer with parts removed or replaced, cut-off
  JSON, HTML, bytes) is a judgement or a `ProviderError`, never anything else.
- An answer cut off at the token limit is the caller's 422 `MAX_TOKENS_TOO_LOW`, not a
  provider failure.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.errors import ProviderError, ProviderTimeoutError
from services.llm_provider_service.models import ComparisonPrompt, Judgement
from services.llm_provider_service.providers.vendor_clients import VENDOR_BUILDERS
from services.llm_provider_service.settings import Settings
from tests.support.fake_vendors import (
    FakeUpstream,
)

PROMPT = ComparisonPrompt.plain(
    system_prompt="You compare two student essays.",
    user_prompt="Which essay is better?\n\nEssay A:\nShort and clear.\n\nEssay B:\nLong, vague.",
)
NO_OVERRIDES = LLMConfigOverrides()
ANTHROPIC_MODEL = "claude-haiku-4-5"  # the default is on the SDK's deprecation list
EXAMPLES = 30  # per vendor: each is one HTTP round trip

JUDGEMENT = {"winner": "Essay A", "justification": "Clearer argument.", "confidence": 4}
VALID_BODIES: dict[LLMProviderType, dict[str, Any]] = {
    LLMProviderType.ANTHROPIC: {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": ANTHROPIC_MODEL,
        "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "comparison_result", "input": JUDGEMENT}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        },
    },
    LLMProviderType.OPENAI: {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4.1-mini",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": json.dumps(JUDGEMENT),
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    },
    LLMProviderType.GOOGLE: {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": json.dumps(JUDGEMENT)}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
        "modelVersion": "gemini-2.5-flash-lite",
        "responseId": "resp1",
    },
}
VALID_BODIES[LLMProviderType.OPENROUTER] = {
    **VALID_BODIES[LLMProviderType.OPENAI],
    "id": "gen-1",
    "model": "openai/gpt-5-mini",
}
BASE_URLS: dict[LLMProviderType, Callable[[FakeUpstream], str]] = {
    LLMProviderType.ANTHROPIC: lambda fake: fake.anthropic_base_url,
    LLMProviderType.OPENAI: lambda fake: fake.openai_base_url,
    LLMProviderType.OPENROUTER: lambda fake: fake.openrouter_base_url,
    LLMProviderType.GOOGLE: lambda fake: fake.google_base_url,
}
VENDORS = list(BASE_URLS)
by_vendor = pytest.mark.parametrize("provider", VENDORS, ids=[v.value for v in VENDORS])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document, the document itself first."""
    yield at
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*at, index))


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> bytes:
    """A valid answer with one to three places removed or replaced by random JSON."""
    body: Any = copy.deepcopy(valid)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(list(_paths(body))))
        replacement = draw(json_values)
        if not path:
            body = replacement
            continue
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()):
            parent[path[-1]] = replacement
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    return json.dumps(body).encode()


def bodies(provider: LLMProviderType) -> st.SearchStrategy[tuple[bytes, str]]:
    """(body, content type) of a 200 answer that is anything but what the SDK expects."""
    valid = json.dumps(VALID_BODIES[provider]).encode()
    json_type = st.just("application/json")
    return st.one_of(
        st.tuples(mutated(VALID_BODIES[provider]), json_type),
        st.tuples(json_values.map(lambda v: json.dumps(v).encode()), json_type),
        st.tuples(
            st.integers(min_value=0, max_value=len(valid) - 1).map(lambda n: valid[:n]),
            json_type,
        ),
        st.tuples(
            st.sampled_from(
                [
                    b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                    b"<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>",
                ]
            ),
            st.sampled_from(["text/html", "application/json"]),
        ),
        st.tuples(st.binary(max_size=64), st.sampled_from(["application/json", "text/plain"])),
    )


@by_vendor
def test_any_200_body_is_a_judgement_or_a_provider_error(
    provider: LLMProviderType,
    clean_fake_upstream: FakeUpstream,
    make_settings: Callable[..., Settings],
) -> None:
    fake = clean_fake_upstream
    name = provider.value
    app_settings = make_settings(
        **{
            f"{name}_api_key": "test-key",
            f"{name}_base_url": BASE_URLS[provider](fake),
            f"{name}_timeout_seconds": 5.0,
            "invalid_response_reasks": 0,  # one HTTP request per example
            "anthropic_default_model": ANTHROPIC_MODEL,
        }
    )
    config = app_settings.provider_settings(provider)
    outcomes: dict[str, int] = {}
    blamed: set[LLMProviderType] = set()
    with asyncio.Runner() as runner:
        adapter, close = VENDOR_BUILDERS[provider](config, app_settings)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(answer=bodies(provider))
        def check(answer: tuple[bytes, str]) -> None:
            body, content_type = answer
            fake.fail_with(name, body, content_type=content_type)
            try:
                outcome = runner.run(adapter.compare(PROMPT, NO_OVERRIDES))
            except ProviderError as exc:
                blamed.add(exc.provider)
                outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
            except Exception as exc:  # what this test exists to catch
                pytest.fail(f"{body[:200]!r} escaped {name} as {type(exc).__name__}: {exc}")
            else:
                assert isinstance(outcome, Judgement)
                outcomes["Judgement"] = outcomes.get("Judgement", 0) + 1
            finally:
                fake.heal()

        async def closed() -> None:
            await close()

        try:
            check()
        finally:
            runner.run(closed())
    assert sum(outcomes.values()) >= EXAMPLES
    assert blamed <= {provider}
    assert outcomes.get("InvalidProviderResponseError", 0) > 0


@by_vendor
async def test_a_wait_for_a_call_slot_counts_toward_the_timeout(
    provider: LLMProviderType,
    clean_fake_upstream: FakeUpstream,
    make_settings: Callable[..., Settings],
) -> None:
    """One slot, a vendor that never answers in time, and more calls than can each get the
    slot within their deadline (timeout plus the grace second): the late ones give up
    waiting, with a timeout that says so, and never reach the vendor."""
    fake = clean_fake_upstream
    fake.hang_seconds = 10.0  # far beyond every deadline below
    fake.fail(provider.value, "timeout")
    name = provider.value
    app_settings = make_settings(
        **{
            f"{name}_api_key": "test-key",
            f"{name}_base_url": BASE_URLS[provider](fake),
            f"{name}_timeout_seconds": 0.2,
            f"{name}_max_concurrency": 1,
            "anthropic_default_model": ANTHROPIC_MODEL,
        }
    )
    adapter, close = VENDOR_BUILDERS[provider](
        app_settings.provider_settings(provider), app_settings
    )
    calls = 12  # one slot, each holder keeps it 0.2 s: the last ones get it long after 1.2 s
    try:
        results = await asyncio.gather(
            *(adapter.compare(PROMPT, NO_OVERRIDES) for _ in range(calls)),
            return_exceptions=True,
        )
    finally:
        await close()

    timeouts = [r for r in results if isinstance(r, ProviderTimeoutError)]
    assert len(timeouts) == calls, results
    waited = [r for r in timeouts if r.details.get("reason") == "slot_wait"]
    assert waited, [str(r) for r in results]
    assert all("waited" in r.message and "slot" in r.message for r in waited)
    # The calls that gave up waiting never reached the vendor. (A call that got the slot at
    # the very end of its deadline may time out before its request arrives: hence <=.)
    assert len(fake.requests_for(name)) <= calls - len(waited)
