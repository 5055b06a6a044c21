"""Rendering a request into the prompt a provider judges, in the caller's or swapped order."""

from __future__ import annotations

import pytest

from services.llm_provider_service.errors import RequestValidationError
from services.llm_provider_service.prompt import render_prompt
from tests.factories import make_request


def test_appended_essays_trade_sections_when_swapped() -> None:
    request = make_request(user_prompt="Which is better?", essay_a="AAA", essay_b="BBB")
    assert (
        render_prompt(request).user_prompt == "Which is better?\n\nEssay A:\nAAA\n\nEssay B:\nBBB"
    )
    swapped = render_prompt(request, swapped=True).user_prompt
    assert swapped == "Which is better?\n\nEssay A:\nBBB\n\nEssay B:\nAAA"


def test_placeholders_take_the_other_essay_when_swapped() -> None:
    request = make_request(
        user_prompt="First: {essay_a}. Second: {essay_b}.", essay_a="{essay_b}", essay_b="b{}"
    )
    # Essays reach the model exactly as written, braces and placeholder lookalikes included.
    assert render_prompt(request).user_prompt == "First: {essay_b}. Second: b{}."
    assert render_prompt(request, swapped=True).user_prompt == "First: b{}. Second: {essay_b}."


def test_one_placeholder_and_one_appended_essay_swap_consistently() -> None:
    request = make_request(user_prompt="Anchor: {essay_a}", essay_a="AAA", essay_b="BBB")
    assert render_prompt(request, swapped=True).user_prompt == "Anchor: BBB\n\nEssay B:\nAAA"


def test_the_system_prompt_is_the_same_in_both_orders() -> None:
    request = make_request(llm_config_overrides={"system_prompt_override": "Be brief."})
    assert render_prompt(request).system_prompt == "Be brief."
    assert render_prompt(request, swapped=True).system_prompt == "Be brief."


def test_a_placeholder_without_its_essay_is_refused_in_both_orders() -> None:
    request = make_request(user_prompt="{essay_b} alone", essay_b=None)
    with pytest.raises(RequestValidationError, match="essay_b is missing"):
        render_prompt(request)


def test_only_a_request_with_both_essays_can_be_swapped() -> None:
    with pytest.raises(ValueError, match="both essays"):
        render_prompt(make_request(essay_b=None), swapped=True)
