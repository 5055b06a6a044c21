"""AnthropicProvider with the real anthropic SDK against the fake upstream over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from common_core.api_models import LLMConfigOverrides
from common_core.enums import OutputVerbosity, ReasoningEffort
from services.llm_provider_service.models import Judgement
from services.llm_provider_service.protocols import LLMProvider
from services.llm_provider_service.providers.anthropic_request import THINKING_INSTRUCTION
from services.llm_provider_service.providers.judgement import (
    JUDGEMENT_SCHEMA,
    TOOL_DESCRIPTION,
    TOOL_NAME,
)
from tests.integration.providers.vendor_adapters import (
    CASE,
    PROMPT,
    VendorAdapter,
    every_override,
)
from tests.integration.providers.vendor_adapters import assert_valid as shared_assert_valid
from tests.support.fake_vendors import (
    FakeUpstream,
)

VENDOR = "anthropic"
MODEL = "claude-test-default"
NO_OVERRIDES = LLMConfigOverrides()


def adapter(harness: VendorAdapter, *, prompt_caching: bool = True, **values: Any) -> LLMProvider:
    """The adapter on its own SDK client (no SDK retries, `TIMEOUT_SECONDS`)."""
    return harness.make(options={"prompt_caching": prompt_caching}, **values)


def sent(fake: FakeUpstream) -> dict[str, Any]:
    body = fake.last(VENDOR).json
    assert isinstance(body, dict)
    return body


def assert_valid(judgement: Judgement, model: str = MODEL) -> None:
    shared_assert_valid(judgement, CASE[VENDOR], model)


# ---- answers and what the request carried -----------------------------------------------------


async def test_one_forced_tool_call_carries_the_prompt_and_the_schema(
    fake: FakeUpstream, harness: VendorAdapter
) -> None:
    # The judgement itself: test_vendor_adapters.py.
    await adapter(harness).compare(PROMPT, NO_OVERRIDES)

    body = sent(fake)
    assert body["model"] == MODEL
    assert body["max_tokens"] == 1024
    assert body["tools"] == [
        {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": JUDGEMENT_SCHEMA}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    assert body["messages"] == [{"role": "user", "content": PROMPT.user_prompt}]
    assert "thinking" not in body
    assert "temperature" not in body
    assert fake.last(VENDOR).headers["authorization"] == "Bearer test-key"


async def test_every_applicable_override_reaches_the_request(
    fake: FakeUpstream, harness: VendorAdapter
) -> None:
    # The verbosity has no Anthropic equivalent: ignored, not a 400.
    overrides = every_override(
        "claude-test-override", 0.2, 300, ReasoningEffort.NONE, OutputVerbosity.HIGH
    )

    judgement = await adapter(harness).compare(PROMPT, overrides)

    assert_valid(judgement, model="claude-test-override")
    body = sent(fake)
    assert body["model"] == "claude-test-override"
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 300
    assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    assert "thinking" not in body
    assert "verbosity" not in str(body)


async def test_prompt_caching_marks_the_system_prompt_and_reports_cache_reads(
    fake: FakeUpstream, harness: VendorAdapter
) -> None:
    provider = adapter(harness, prompt_caching=True)

    first = await provider.compare(PROMPT, NO_OVERRIDES)
    second = await provider.compare(PROMPT, NO_OVERRIDES)

    assert sent(fake)["system"] == [
        {
            "type": "text",
            "text": PROMPT.system_prompt,
            "cache_control": {"type": "ephemeral", "ttl": "5m"},
        }
    ]
    assert first.token_usage.cached_prompt_tokens == 0
    assert second.token_usage.cached_prompt_tokens > 0
    # Cached tokens are part of the prompt: the prompt is the same size either way.
    assert second.token_usage.prompt_tokens == first.token_usage.prompt_tokens
    assert second.token_usage.prompt_tokens > second.token_usage.cached_prompt_tokens
    # Both are fresh calls with their own answers.
    assert first.provider_request_id != second.provider_request_id
    assert len(fake.requests_for(VENDOR)) == 2


async def test_without_prompt_caching_the_system_prompt_is_plain_text(
    fake: FakeUpstream, harness: VendorAdapter
) -> None:
    provider = adapter(harness, prompt_caching=False)

    await provider.compare(PROMPT, NO_OVERRIDES)
    judgement = await provider.compare(PROMPT, NO_OVERRIDES)

    assert sent(fake)["system"] == PROMPT.system_prompt
    assert judgement.token_usage.cached_prompt_tokens == 0


# ---- thinking ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("effort", "budget"),
    [(ReasoningEffort.LOW, 1024), (ReasoningEffort.MEDIUM, 4096), (ReasoningEffort.HIGH, 16384)],
)
async def test_thinking_uses_auto_tool_choice_a_budget_and_no_temperature(
    fake: FakeUpstream, harness: VendorAdapter, effort: ReasoningEffort, budget: int
) -> None:
    overrides = LLMConfigOverrides(reasoning_effort=effort, temperature_override=0.2)

    judgement = await adapter(harness).compare(PROMPT, overrides)

    assert_valid(judgement)
    body = sent(fake)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == budget + 1024
    assert body["tool_choice"] == {"type": "auto"}
    assert body["tools"][0]["name"] == TOOL_NAME
    assert "temperature" not in body
    assert body["system"][-1] == {"type": "text", "text": THINKING_INSTRUCTION}


async def test_thinking_budget_fits_inside_a_max_tokens_override(
    fake: FakeUpstream, harness: VendorAdapter
) -> None:
    overrides = LLMConfigOverrides(reasoning_effort=ReasoningEffort.HIGH, max_tokens_override=2048)

    assert_valid(await adapter(harness, prompt_caching=False).compare(PROMPT, overrides))

    body = sent(fake)
    assert body["max_tokens"] == 2048
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048 - 256}
    assert body["system"].endswith(THINKING_INSTRUCTION)


async def test_thinking_is_dropped_when_the_token_cap_leaves_no_room_for_it(
    fake: FakeUpstream, harness: VendorAdapter
) -> None:
    overrides = LLMConfigOverrides(reasoning_effort=ReasoningEffort.LOW, max_tokens_override=1000)

    assert_valid(await adapter(harness).compare(PROMPT, overrides))

    body = sent(fake)
    assert body["max_tokens"] == 1000
    assert "thinking" not in body
    assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
