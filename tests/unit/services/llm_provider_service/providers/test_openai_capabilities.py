"""The OpenAI capability table: which parameters each model family takes."""

from __future__ import annotations

import pytest

from common_core.enums import ReasoningEffort
from services.llm_provider_service.providers.openai_provider import (
    DEFAULT_REASONING_FAMILIES,
    ModelCapabilities,
    ReasoningFamily,
    model_capabilities,
)

PREFIXES = ("o1", "o3", "o4", "gpt-5")
ALL_EFFORTS = tuple(ReasoningEffort)


@pytest.mark.parametrize(
    "model", ["gpt-4o", "gpt-4.1-mini", "gpt-4o-2024-08-06", "ft:gpt-4o-mini:acme::abc123"]
)
def test_a_classic_model_takes_max_tokens_and_temperature_and_no_reasoning(model: str) -> None:
    caps = model_capabilities(model, PREFIXES)

    assert caps == ModelCapabilities(reasoning=False)
    assert caps.temperature is True
    assert caps.default_max_tokens == 1024
    assert caps.verbosity is False
    assert all(caps.effort(effort) is None for effort in ALL_EFFORTS)


@pytest.mark.parametrize(
    ("model", "sent", "verbosity"),
    [
        # gpt-5 family: no "none"; "minimal" is the least reasoning.
        ("gpt-5", ("minimal", "low", "medium", "high"), True),
        ("gpt-5-mini", ("minimal", "low", "medium", "high"), True),
        ("gpt-5-nano-2025-08-07", ("minimal", "low", "medium", "high"), True),
        ("ft:gpt-5-mini:acme::x1", ("minimal", "low", "medium", "high"), True),
        # gpt-5.1 and later: "none" is native.
        ("gpt-5.1", ("none", "low", "medium", "high"), True),
        ("gpt-5.2-2025-12-11", ("none", "low", "medium", "high"), True),
        ("GPT-5.4-mini", ("none", "low", "medium", "high"), True),
        # o-series: "low" is the least; no verbosity.
        ("o1", ("low", "low", "medium", "high"), False),
        ("o3-mini", ("low", "low", "medium", "high"), False),
        ("o4-mini-2025-04-16", ("low", "low", "medium", "high"), False),
        # ChatGPT snapshots: reasoning-style parameters, but no effort and no verbosity.
        ("gpt-5-chat-latest", (None, None, None, None), False),
        ("gpt-5.1-chat-latest", (None, None, None, None), False),
    ],
)
def test_a_reasoning_model_takes_completion_tokens_its_efforts_and_no_temperature(
    model: str, sent: tuple[str | None, ...], verbosity: bool
) -> None:
    caps = model_capabilities(model, PREFIXES)

    assert caps.reasoning is True
    assert caps.temperature is False
    assert caps.default_max_tokens == 8192
    assert caps.verbosity is verbosity
    assert tuple(caps.effort(effort) for effort in ALL_EFFORTS) == sent


def test_efforts_map_in_the_enums_order() -> None:
    assert ALL_EFFORTS == (
        ReasoningEffort.NONE,
        ReasoningEffort.LOW,
        ReasoningEffort.MEDIUM,
        ReasoningEffort.HIGH,
    )


def test_the_reasoning_prefixes_decide_and_are_overridable() -> None:
    assert model_capabilities("gpt-5-mini", ()).reasoning is False
    assert model_capabilities("o3", ("gpt-5",)).reasoning is False
    assert model_capabilities("gpt-4.1", ("gpt-4.1",)).reasoning is True


def test_a_configured_reasoning_model_of_no_known_family_gets_the_safe_common_set() -> None:
    caps = model_capabilities("gpt-6-astra", (*PREFIXES, "gpt-6"))
    assert caps.effort(ReasoningEffort.NONE) == "none"  # gpt-6 is in the "none" family

    unknown = model_capabilities("codex-mini-latest", (*PREFIXES, "codex"))
    assert unknown.reasoning is True
    assert unknown.verbosity is False
    assert [unknown.effort(e) for e in ALL_EFFORTS] == ["low", "low", "medium", "high"]


def test_the_family_table_is_overridable() -> None:
    families = (ReasoningFamily(r"o\d", frozenset({"high"}), None, verbosity=True),)

    caps = model_capabilities("o3", PREFIXES, families)

    assert caps.verbosity is True
    assert caps.effort(ReasoningEffort.HIGH) == "high"
    assert caps.effort(ReasoningEffort.LOW) is None
    assert caps.effort(ReasoningEffort.NONE) is None


def test_the_default_families_never_send_effort_values_the_sdk_does_not_know() -> None:
    known = {"none", "minimal", "low", "medium", "high", "xhigh", "max"}
    for family in DEFAULT_REASONING_FAMILIES:
        assert family.efforts <= known
        assert family.none_as is None or family.none_as in family.efforts
