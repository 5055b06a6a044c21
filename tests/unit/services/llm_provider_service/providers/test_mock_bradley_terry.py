"""The mock provider's Bradley-Terry rater: abilities from markers in the presented prompt,
the first-presented essay winning with logistic(bias + θ_first - θ_second), fresh
randomness per call."""

from __future__ import annotations

import math
import random
import re

import pytest

from common_core.api_models import JUSTIFICATION_MAX_CHARS, LLMConfigOverrides
from common_core.enums import EssayWinner
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.position_bias.stats import binomial_two_sided_p
from services.llm_provider_service.providers.ability_marker import (
    abilities_in,
    ability_marker,
    confidence_for,
    first_win_probability,
)
from services.llm_provider_service.providers.mock import MockProvider
from tests.unit.services.llm_provider_service.providers.test_mock import (
    BASE_CONFIG,
    RecordingSleep,
)

NO_OVERRIDES = LLMConfigOverrides()
TAG = re.compile(r"^\[mock-bt: (first|second) won, p=(\d\.\d\d)\] ")


def prompt(first: float | None, second: float | None) -> ComparisonPrompt:
    a = f"Cats are good. {ability_marker(first)}" if first is not None else "Cats are good."
    b = f"Dogs are good. {ability_marker(second)}" if second is not None else "Dogs are good."
    return ComparisonPrompt.plain(
        system_prompt="Judge.", user_prompt=f"Which?\n\nEssay A:\n{a}\n\nEssay B:\n{b}"
    )


def rater(*, bias: float = 0.0, seed: int = 7) -> MockProvider:
    config = BASE_CONFIG.model_copy(update={"rater": "bradley_terry", "position_bias": bias})
    return MockProvider(config, random.Random(seed), sleep=RecordingSleep())


async def first_share(provider: MockProvider, shown: ComparisonPrompt, n: int) -> int:
    wins = 0
    for _ in range(n):
        answer = await provider.compare(shown, NO_OVERRIDES)
        wins += answer.winner is EssayWinner.ESSAY_A
    return wins


def test_markers_are_read_in_order_and_round_trip() -> None:
    text = f"x {ability_marker(1.25)} y {ability_marker(-0.5)} <!-- ability: 3 -->"
    assert abilities_in(text) == [1.25, -0.5, 3.0]
    assert ability_marker(-0.123456) == "<!-- ability: -0.1235 -->"
    with pytest.raises(ValueError, match="finite"):
        ability_marker(math.inf)


@pytest.mark.parametrize(
    ("first", "second", "bias"),
    [(1.0, -1.0, 0.0), (-1.0, 1.0, 0.0), (0.0, 0.0, 0.8), (0.5, 0.5, -0.8), (2.0, 0.0, 0.8)],
)
async def test_the_first_presented_essay_wins_with_the_bradley_terry_probability(
    first: float, second: float, bias: float
) -> None:
    expected = 1 / (1 + math.exp(-(bias + first - second)))
    assert first_win_probability(prompt(first, second).user_prompt, bias) == pytest.approx(expected)
    n = 2000
    wins = await first_share(rater(bias=bias), prompt(first, second), n)
    # Exact binomial test against the expected probability, one-in-10,000 level: scaled
    # deviation within 3.9 standard deviations.
    assert abs(wins - n * expected) <= 3.9 * math.sqrt(n * expected * (1 - expected)), wins


async def test_swapping_the_presented_essays_swaps_the_odds() -> None:
    n = 2000
    strong_first = await first_share(rater(seed=1), prompt(1.5, -1.5), n)
    strong_second = await first_share(rater(seed=2), prompt(-1.5, 1.5), n)
    assert strong_first > 0.9 * n
    assert strong_second < 0.1 * n


async def test_without_markers_only_the_position_bias_is_left() -> None:
    wins = await first_share(rater(bias=0.0), prompt(None, None), 2000)
    assert binomial_two_sided_p(wins, 2000) > 1e-4


async def test_identical_prompts_get_varied_answers_never_a_replayed_one() -> None:
    provider = rater()
    answers = [await provider.compare(prompt(0.2, 0.0), NO_OVERRIDES) for _ in range(40)]
    assert {a.winner for a in answers} == {EssayWinner.ESSAY_A, EssayWinner.ESSAY_B}
    assert len({a.provider_request_id for a in answers}) == 40


async def test_the_justification_says_what_the_rater_saw_and_names_the_winner() -> None:
    provider = rater()
    for _ in range(50):
        answer = await provider.compare(prompt(0.3, -0.2), NO_OVERRIDES)
        tag = TAG.match(answer.justification)
        assert tag is not None, answer.justification
        assert tag.group(1) == ("first" if answer.winner is EssayWinner.ESSAY_A else "second")
        assert float(tag.group(2)) == pytest.approx(1 / (1 + math.exp(-0.5)), abs=0.005)
        assert answer.winner.value in answer.justification
        assert len(answer.justification) <= JUSTIFICATION_MAX_CHARS
        assert answer.confidence == confidence_for(1 / (1 + math.exp(-0.5)))


@pytest.mark.parametrize(
    ("probability", "confidence"), [(0.5, 1), (0.6, 2), (0.4, 2), (0.75, 3), (0.9, 4), (0.99, 5)]
)
def test_confidence_grows_with_how_one_sided_the_pair_is(
    probability: float, confidence: int
) -> None:
    assert confidence_for(probability) == confidence


async def test_a_tight_token_budget_keeps_the_tag_and_a_verdict() -> None:
    provider = rater()
    answer = await provider.compare(prompt(0.0, 0.0), LLMConfigOverrides(max_tokens_override=40))
    assert TAG.match(answer.justification)
    assert len(answer.justification) <= (40 - 16) * 4
