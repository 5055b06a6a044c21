"""The report's statistics against scipy (a test-only dependency: the service has none)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binomtest

from common_core.enums import LLMProviderType
from services.llm_provider_service.models import PositionCounts
from services.llm_provider_service.position_bias.report import build_report
from services.llm_provider_service.position_bias.stats import (
    binomial_two_sided_p,
    wilson_interval,
)

CASES = [(0, 1), (1, 1), (0, 10), (3, 10), (5, 10), (112, 225), (140, 225), (0, 400)]
CASES += [(4_990, 10_000), (5_210, 10_000), (1_000_700, 2_000_000)]


@pytest.mark.parametrize(("wins", "n"), CASES)
def test_the_binomial_test_is_scipys_exact_test(wins: int, n: int) -> None:
    assert binomial_two_sided_p(wins, n) == pytest.approx(binomtest(wins, n, 0.5).pvalue, rel=1e-7)


@pytest.mark.parametrize(("wins", "n"), [(5, 9), (4, 9), (500, 1000), (1, 2), (0, 1)])
def test_no_evidence_against_a_fair_coin_is_a_p_value_of_exactly_one(wins: int, n: int) -> None:
    assert binomial_two_sided_p(wins, n) == 1.0


def test_small_counts_are_exact() -> None:
    assert binomial_two_sided_p(0, 10) == 2 / 1024
    assert binomial_two_sided_p(2, 10) == 2 * (1 + 10 + 45) / 1024


@pytest.mark.parametrize(("wins", "n"), CASES)
def test_the_wilson_interval_is_scipys(wins: int, n: int) -> None:
    interval = binomtest(wins, n, 0.5).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(wins, n)
    assert low == pytest.approx(interval.low, abs=1e-12)
    assert high == pytest.approx(interval.high, abs=1e-12)


@given(
    st.integers(min_value=1, max_value=5_000).flatmap(
        lambda n: st.tuples(st.integers(0, n), st.just(n))
    )
)
def test_the_p_value_is_a_probability_symmetric_in_wins_and_losses(case: tuple[int, int]) -> None:
    wins, n = case
    p = binomial_two_sided_p(wins, n)
    assert 0.0 <= p <= 1.0  # 0.0 where the exact value is below a double's range
    assert p == pytest.approx(binomial_two_sided_p(n - wins, n), rel=1e-12)
    low, high = wilson_interval(wins, n)
    assert 0.0 <= low <= wins / n <= high <= 1.0


@pytest.mark.parametrize(("wins", "n"), [(-1, 5), (6, 5), (0, -1)])
def test_impossible_counts_are_refused(wins: int, n: int) -> None:
    with pytest.raises(ValueError, match="wins"):
        binomial_two_sided_p(wins, n)
    with pytest.raises(ValueError, match="wins"):
        wilson_interval(wins, n)


def test_no_judgements_have_no_interval_and_no_evidence() -> None:
    assert binomial_two_sided_p(0, 0) == 1.0
    with pytest.raises(ValueError, match="at least one"):
        wilson_interval(0, 0)


def test_the_report_has_one_entry_per_model_with_its_share_interval_and_test() -> None:
    report = build_report(
        [
            PositionCounts(LLMProviderType.OPENAI, "gpt-5-mini", 225, 140),
            PositionCounts(LLMProviderType.MOCK, "empty", 0, 0),
        ]
    )
    [entry] = report.models
    assert entry.model_dump() == {
        "provider": LLMProviderType.OPENAI,
        "model": "gpt-5-mini",
        "judgements": 225,
        "first_position_wins": 140,
        "first_position_share": pytest.approx(140 / 225),
        "ci95_low": pytest.approx(0.55732, abs=1e-5),
        "ci95_high": pytest.approx(0.68302, abs=1e-5),
        "p_value": pytest.approx(binomtest(140, 225).pvalue, rel=1e-7),
    }
