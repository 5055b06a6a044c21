"""Where the Anthropic adapter puts `cache_control`: at each TTL change of the cacheable
prefix, four at most, or on the system prompt when nothing is marked."""

from __future__ import annotations

from collections.abc import Sequence

from common_core.enums import CacheTTL
from services.llm_provider_service.models import ComparisonPrompt, PromptPart
from services.llm_provider_service.providers.anthropic_request import cache_breakpoints

H, M = CacheTTL.ONE_HOUR, CacheTTL.FIVE_MINUTES


def prompt(system: Sequence[CacheTTL | None], user: Sequence[CacheTTL | None]) -> ComparisonPrompt:
    return ComparisonPrompt(
        system_parts=tuple(PromptPart(text=f"s{i}", cache_ttl=t) for i, t in enumerate(system)),
        user_parts=tuple(PromptPart(text=f"u{i}", cache_ttl=t) for i, t in enumerate(user)),
    )


def test_one_run_of_one_ttl_is_one_breakpoint_at_its_end() -> None:
    assert cache_breakpoints(prompt([H], [H, H, None, M])) == {2: H}


def test_a_ttl_change_starts_a_new_breakpoint() -> None:
    assert cache_breakpoints(prompt([H, H], [M, M, None])) == {1: H, 3: M}


def test_nothing_after_the_first_uncached_part_is_cached() -> None:
    assert cache_breakpoints(prompt([None], [H, M])) == {0: M}  # nothing marked: system 5m


def test_at_most_four_breakpoints_the_longest_prefixes_kept() -> None:
    alternating = [H, M, H, M, H, M]  # cannot come from valid blocks; still bounded
    assert list(cache_breakpoints(prompt([], alternating))) == [2, 3, 4, 5]


def test_a_plain_prompt_caches_its_system_prompt_for_five_minutes() -> None:
    plain = ComparisonPrompt.plain(user_prompt="u", system_prompt="s")
    assert cache_breakpoints(plain) == {0: M}
