"""Rendering a request into the prompt a provider judges, in the caller's or swapped order."""

from __future__ import annotations

import pytest

from services.llm_provider_service.errors import RequestValidationError
from services.llm_provider_service.prompt import prompt_sha256, render_prompt
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


def blocks(*specs: tuple[str, str, dict[str, object]]) -> list[dict[str, object]]:
    return [{"target": target, "content": content, **extra} for target, content, extra in specs]


def test_blocks_are_the_prompt_user_prompt_only_the_fallback() -> None:
    request = make_request(
        user_prompt="ignored",
        essay_a=None,
        essay_b=None,
        prompt_blocks=blocks(
            ("system", "Rules.", {"cacheable": True, "ttl": "1h"}),
            ("user_content", "Rubric.", {"cacheable": True}),
            ("user_content", "The pair.", {}),
            ("system", "More rules.", {"cacheable": True, "ttl": "1h"}),
        ),
    )
    prompt = render_prompt(request)
    assert prompt.system_prompt == "Rules.\n\nMore rules."
    assert prompt.user_prompt == "Rubric.\n\nThe pair."
    # Sent system first: Rules, More rules, Rubric, then the uncached pair ends the prefix.
    assert [p.text for p in prompt.cached_prefix] == ["Rules.", "More rules.", "Rubric."]


def test_a_target_without_blocks_falls_back() -> None:
    only_system = make_request(
        user_prompt="The task.", essay_a=None, essay_b=None,
        prompt_blocks=blocks(("system", "Rules.", {})),
    )  # fmt: skip
    only_user = make_request(
        llm_config_overrides={"system_prompt_override": "Be brief."},
        essay_a=None,
        essay_b=None,
        prompt_blocks=blocks(("user_content", "Task.", {})),
    )
    assert render_prompt(only_system).user_prompt == "The task."
    assert render_prompt(only_user).system_prompt == "Be brief."


def test_essays_go_into_block_placeholders_and_such_a_block_is_never_cached() -> None:
    request = make_request(
        essay_a="AAA",
        essay_b="BBB",
        prompt_blocks=blocks(
            ("user_content", "Compare {essay_a} with {essay_b}.", {"cacheable": True}),
        ),
    )
    prompt = render_prompt(request)
    assert prompt.user_prompt == "Compare AAA with BBB."
    assert prompt.cached_prefix == ()
    assert render_prompt(request, swapped=True).user_prompt == "Compare BBB with AAA."


def test_essays_without_placeholders_are_appended_after_the_blocks() -> None:
    request = make_request(
        essay_a="AAA", essay_b="BBB", prompt_blocks=blocks(("user_content", "Task.", {}))
    )
    assert render_prompt(request).user_prompt == "Task.\n\nEssay A:\nAAA\n\nEssay B:\nBBB"


def test_marked_essay_blocks_trade_contents_when_swapped() -> None:
    request = make_request(
        essay_a=None,
        essay_b=None,
        prompt_blocks=blocks(
            ("user_content", "Essay A:", {}),
            ("user_content", "AAA", {"essay": "a"}),
            ("user_content", "Essay B:", {}),
            ("user_content", "BBB", {"essay": "b"}),
        ),
    )
    assert render_prompt(request).user_prompt == "Essay A:\n\nAAA\n\nEssay B:\n\nBBB"
    swapped = render_prompt(request, swapped=True).user_prompt
    assert swapped == "Essay A:\n\nBBB\n\nEssay B:\n\nAAA"


def test_a_plain_request_renders_as_it_always_did() -> None:
    # prompt_sha256 names a request for consumers: it must not move for plain requests
    # (the value the version before prompt blocks computed).
    request = make_request(user_prompt="Which is better?", essay_a="AAA", essay_b="BBB")
    assert prompt_sha256(render_prompt(request)) == (
        "cdabc2e1dfa390311751cfda2f6b301b73b7180bc48955d814295cfeedfd870c"
    )
