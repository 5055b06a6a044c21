"""GeminiProvider with the real google-genai SDK against the fake upstream over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from common_core.api_models import LLMConfigOverrides
from common_core.enums import OutputVerbosity, ReasoningEffort
from services.llm_provider_service.models import Judgement
from services.llm_provider_service.protocols import LLMProvider
from services.llm_provider_service.providers.judgement import JUDGEMENT_SCHEMA
from tests.integration.providers.vendor_adapters import (
    CASE,
    PROMPT,
    VendorAdapter,
    every_override,
)
from tests.integration.providers.vendor_adapters import assert_valid as shared_assert_valid
from tests.support.fake_vendors import (
    FakeUpstream,
    camel_schema,
)

VENDOR = "google"
MODEL = "gemini-2.5-flash"
NO_OVERRIDES = LLMConfigOverrides()


def adapter(harness: VendorAdapter, **values: Any) -> LLMProvider:
    """The adapter on its own SDK client (one attempt, `TIMEOUT_SECONDS`)."""
    return harness.make(**values)


def sent(fake: FakeUpstream) -> dict[str, Any]:
    body = fake.last(VENDOR).json
    assert isinstance(body, dict)
    return body


def generation_config(fake: FakeUpstream) -> dict[str, Any]:
    """The request's generationConfig in camelCase (google-genai sends some keys snake_case)."""
    config = camel_schema(sent(fake)["generationConfig"])
    assert isinstance(config, dict)
    return config


def assert_valid(judgement: Judgement, model: str = MODEL) -> None:
    shared_assert_valid(judgement, CASE[VENDOR], model)


# ---- answers and what the request carried -----------------------------------------------------


async def test_one_schema_constrained_call_carries_the_prompt_and_the_schema(
    fake: FakeUpstream, harness: VendorAdapter
) -> None:
    # The judgement itself: test_vendor_adapters.py.
    await adapter(harness).compare(PROMPT, NO_OVERRIDES)

    assert fake.last(VENDOR).path == f"/v1/models/{MODEL}:generateContent"
    body = sent(fake)
    assert body["systemInstruction"]["parts"] == [{"text": PROMPT.system_prompt}]
    assert body["contents"] == [{"role": "user", "parts": [{"text": PROMPT.user_prompt}]}]
    assert "tools" not in body
    config = generation_config(fake)
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == camel_schema(JUDGEMENT_SCHEMA)
    assert "responseSchema" not in config
    assert config["maxOutputTokens"] == 1024
    assert config["thinkingConfig"] == {"thinkingBudget": 0}  # Flash can switch thinking off
    assert "temperature" not in config
    assert fake.last(VENDOR).headers["x-goog-api-key"] == "test-key"


async def test_every_applicable_override_reaches_the_request(
    fake: FakeUpstream, harness: VendorAdapter
) -> None:
    # The verbosity has no Gemini equivalent: ignored, not a 400.
    overrides = every_override(
        "gemini-2.5-flash-lite", 0.4, 700, ReasoningEffort.NONE, OutputVerbosity.LOW
    )

    judgement = await adapter(harness).compare(PROMPT, overrides)

    assert_valid(judgement, model="gemini-2.5-flash-lite")
    assert fake.last(VENDOR).path == "/v1/models/gemini-2.5-flash-lite:generateContent"
    config = generation_config(fake)
    assert config["temperature"] == 0.4
    assert config["maxOutputTokens"] == 700
    assert config["thinkingConfig"] == {"thinkingBudget": 0}
    assert "verbosity" not in str(config).lower()


# ---- thinking ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "effort", "budget"),
    [
        (MODEL, ReasoningEffort.LOW, 1024),
        (MODEL, ReasoningEffort.MEDIUM, 4096),
        (MODEL, ReasoningEffort.HIGH, 16384),
        (MODEL, ReasoningEffort.NONE, 0),
        ("gemini-2.5-pro", ReasoningEffort.HIGH, 16384),
        ("gemini-2.5-pro", ReasoningEffort.NONE, 1024),  # Pro cannot switch thinking off
        ("gemini-2.5-pro", None, 1024),
    ],
)
async def test_reasoning_effort_sets_the_thinking_budget(
    fake: FakeUpstream,
    harness: VendorAdapter,
    model: str,
    effort: ReasoningEffort | None,
    budget: int,
) -> None:
    overrides = LLMConfigOverrides(model_override=model, reasoning_effort=effort)

    judgement = await adapter(harness).compare(PROMPT, overrides)

    assert_valid(judgement, model=model)
    config = generation_config(fake)
    assert config["thinkingConfig"] == {"thinkingBudget": budget}
    assert config["maxOutputTokens"] == 1024 + budget  # thoughts count toward the cap


@pytest.mark.parametrize(
    ("model", "cap", "budget"),
    [
        (MODEL, 2048, 2048 - 256),
        (MODEL, 600, 0),  # too little room to think: switched off
        ("gemini-2.5-pro", 300, 128),  # Pro's minimum budget
    ],
)
async def test_thinking_budget_fits_inside_a_max_tokens_override(
    fake: FakeUpstream, harness: VendorAdapter, model: str, cap: int, budget: int
) -> None:
    overrides = LLMConfigOverrides(
        model_override=model, reasoning_effort=ReasoningEffort.HIGH, max_tokens_override=cap
    )

    assert_valid(await adapter(harness).compare(PROMPT, overrides), model=model)

    config = generation_config(fake)
    assert config["maxOutputTokens"] == cap
    assert config["thinkingConfig"] == {"thinkingBudget": budget}
