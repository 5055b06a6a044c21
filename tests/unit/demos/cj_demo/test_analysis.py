"""Session analysis: the replicate test, recovery metrics, position figures and the checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from demos.cj_demo.analysis import (
    Judged,
    analyse,
    cache_checks,
    fresh_checks,
    poisson_binomial_pmf,
    replicate_test,
)
from demos.cj_demo.bt import logistic
from demos.cj_demo.calibrate import simulate
from demos.cj_demo.design import make_design
from demos.cj_demo.thresholds import THRESHOLDS, thresholds_for


@pytest.fixture(scope="module")
def design():
    return make_design()


def session(design, eta, seed, *, order="randomized", cache=False):
    judged = simulate(design, eta=eta, order=order, cache=cache, rng=np.random.default_rng(seed))
    return judged, analyse(design, judged, eta=eta)


@pytest.mark.parametrize("size", [0, 1, 7, 75, 300])
def test_poisson_binomial_pmf_matches_scipy(size):
    q = np.random.default_rng(size).random(size)
    pmf = poisson_binomial_pmf(q)
    assert pmf.shape == (size + 1,)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    if size:
        np.testing.assert_allclose(pmf, stats.poisson_binom.pmf(np.arange(size + 1), q), atol=1e-13)


def test_poisson_binomial_pmf_degenerate_and_invalid():
    np.testing.assert_allclose(poisson_binomial_pmf(np.array([1.0, 1.0, 0.0])), [0, 0, 1, 0])
    with pytest.raises(ValueError, match="probabilities"):
        poisson_binomial_pmf(np.array([0.5, 1.2]))
    with pytest.raises(ValueError, match="probabilities"):
        poisson_binomial_pmf(np.array([[0.5]]))


@pytest.mark.parametrize(("eta", "seed"), [(0.0, 1), (0.0, 2), (0.8, 3), (0.8, 4), (0.8, 5)])
def test_replicate_test_matches_scipy(design, eta, seed):
    judged, _ = session(design, eta, seed)
    result = replicate_test(design, judged, eta=eta)
    # q from first principles: P(essay_a wins) in each presentation, then P(winners differ).
    pairs = np.array(design.replicate_pairs)
    a, _ = design.caller_order()
    p_first = logistic(eta + design.theta[judged.first] - design.theta[judged.second])
    p_a = np.where(judged.first == a, p_first, 1 - p_first)
    p, p2 = p_a[pairs[:, 0]], p_a[pairs[:, 1]]
    q = p * (1 - p2) + (1 - p) * p2
    d = int(np.sum(judged.winner[pairs[:, 0]] != judged.winner[pairs[:, 1]]))
    expected_p = min(1.0, 2 * min(stats.poisson_binom.cdf(d, q), stats.poisson_binom.sf(d - 1, q)))
    assert result.d == d
    assert result.p_value == pytest.approx(expected_p, rel=1e-9, abs=1e-15)
    assert result.expected == pytest.approx(q.sum())
    assert result.agreement == pytest.approx(1 - d / 75)
    assert result.expected_agreement == pytest.approx(1 - q.mean())


def test_replicate_test_needs_replicates():
    plain = make_design(repeat_rounds=0)
    judged = simulate(plain, eta=0.0, order="randomized", cache=False, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="no replicate pairs"):
        replicate_test(plain, judged, eta=0.0)


@pytest.mark.parametrize("eta", [0.0, 0.8])
def test_a_cache_fails_the_replicate_test(design, eta):
    _, result = session(design, eta, 7, cache=True)
    assert result.replicate.d == 0
    assert result.replicate.agreement == 1.0
    assert result.replicate.p_value < 1e-6
    assert all(check.passed for check in cache_checks(result))
    failed = [c.name for c in fresh_checks(result, thresholds_for(eta)) if not c.passed]
    assert "replicate_p" in failed


@pytest.mark.parametrize("eta", [0.0, 0.8])
def test_a_fresh_session_passes_the_fresh_checks(design, eta):
    _, result = session(design, eta, 2026)
    checks = fresh_checks(result, thresholds_for(eta))
    assert [c for c in checks if not c.passed] == []
    expected = {"replicate_p", "spearman", "ssr", "coverage", "z_sd"}
    if eta == 0.0:
        expected |= {"first_position_p", "swapped_share"}
    assert {c.name for c in checks} == expected
    assert not all(check.passed for check in cache_checks(result))
    assert all("simulated false-fail" in c.rule for c in checks)


def test_recovery_metrics_match_their_definitions(design):
    _, result = session(design, 0.8, 11)
    theta = design.theta - design.theta.mean()
    fit = result.fit
    assert result.spearman == pytest.approx(stats.spearmanr(fit.theta, theta).statistic)
    assert result.pearson == pytest.approx(stats.pearsonr(fit.theta, theta).statistic)
    assert result.spearman_fixed == pytest.approx(
        stats.spearmanr(result.fit_fixed.theta, theta).statistic
    )
    error = fit.theta - theta
    assert result.rmse == pytest.approx(np.sqrt(np.mean(error**2)))
    assert result.coverage == pytest.approx(np.mean(np.abs(error) <= 1.96 * fit.se))
    assert result.z_sd == pytest.approx(np.std(error / fit.se, ddof=1))
    assert result.ssr == pytest.approx(1 - np.mean(fit.se**2) / np.var(fit.theta, ddof=1))
    assert result.eta_hat == fit.eta
    assert result.eta_z == pytest.approx(fit.eta / fit.eta_se)
    assert result.fit_fixed.eta == 0.0


def test_position_figures(design):
    judged, result = session(design, 0.8, 12)
    wins = int(judged.first_won.sum())
    assert result.first_position_wins == wins
    assert result.randomized_judgements == result.judgements == 225
    assert result.first_position_share == pytest.approx(wins / 225)
    assert result.first_p_value == pytest.approx(stats.binomtest(wins, 225).pvalue)
    low, high = result.first_ci95
    assert low < wins / 225 < high
    a, _ = design.caller_order()
    assert result.swapped_share == pytest.approx(np.mean(judged.first != a))
    _, as_sent = session(design, 0.8, 12, order="as_sent")
    assert as_sent.randomized_judgements == 0
    assert as_sent.swapped_share == 0.0


def test_unrandomized_bias_distorts_the_plain_fit_and_eta_removes_it(design):
    # Averaged over sessions so a single unlucky draw cannot decide the test.
    plain, adjusted = [], []
    for seed in range(12):
        _, result = session(design, 0.8, 100 + seed, order="as_sent")
        plain.append(result.distortion_corr)
        adjusted.append(result.distortion_corr_adjusted)
    assert np.mean(plain) > 0.3
    assert abs(np.mean(adjusted)) < 0.15


def test_from_outcomes_maps_presentation_and_winner():
    small = make_design(n_essays=4, new_rounds=3, repeat_rounds=1, seed=5)
    a, b = small.caller_order()
    swapped = [False, True, False, True, True, False, False, True]
    winner = [a[0], a[1], b[2], b[3], a[4], b[5], a[6], b[7]]
    judged = Judged.from_outcomes(small, swapped, winner, randomized=True)
    np.testing.assert_array_equal(judged.first, np.where(swapped, b, a))
    np.testing.assert_array_equal(judged.second, np.where(swapped, a, b))
    np.testing.assert_array_equal(
        judged.first_won, [True, False, False, True, False, False, True, True]
    )
    np.testing.assert_array_equal(judged.winner, winner)
    assert judged.randomized


def test_from_outcomes_rejects_bad_outcomes():
    small = make_design(n_essays=4, new_rounds=3, repeat_rounds=1, seed=5)
    a, b = small.caller_order()
    stranger = next(e for e in range(4) if e not in (a[0], b[0]))
    with pytest.raises(ValueError, match="neither"):
        Judged.from_outcomes(small, [False] * 8, [stranger, *a[1:]], randomized=False)
    with pytest.raises(ValueError, match="one per pairing"):
        Judged.from_outcomes(small, [False] * 7, list(a[:7]), randomized=False)


def test_analyse_rejects_judgements_of_other_pairs(design):
    judged, _ = session(design, 0.0, 1)
    wrong = Judged(judged.second[::-1].copy(), judged.first[::-1].copy(), judged.first_won, True)
    with pytest.raises(ValueError, match="two essays"):
        analyse(design, wrong, eta=0.0)
    with pytest.raises(ValueError, match="same shape"):
        Judged(judged.first, judged.second[:-1], judged.first_won, True)


VIOLATIONS = {
    "spearman": {"spearman": 0.5},
    "ssr": {"ssr": 0.3},
    "coverage": {"coverage": 0.5},
    "z_sd": {"z_sd": 2.5},
    "first_position_p": {"first_p_value": 1e-7},
    "swapped_share": {"swapped_share": 0.3},
}


@pytest.mark.parametrize("name", [*VIOLATIONS, "replicate_p", "nan_ssr"])
def test_each_check_can_fail(design, name):
    _, result = session(design, 0.0, 2026)
    if name == "replicate_p":
        bad = dataclasses.replace(
            result, replicate=dataclasses.replace(result.replicate, p_value=1e-4)
        )
    elif name == "nan_ssr":
        bad, name = dataclasses.replace(result, ssr=float("nan")), "ssr"
    else:
        bad = dataclasses.replace(result, **VIOLATIONS[name])
    failed = [c.name for c in fresh_checks(bad, thresholds_for(0.0)) if not c.passed]
    assert failed == [name]


def test_cache_checks_fail_on_any_disagreement(design):
    _, result = session(design, 0.0, 7, cache=True)
    one_off = dataclasses.replace(
        result, replicate=dataclasses.replace(result.replicate, d=1, agreement=74 / 75)
    )
    failed = {c.name for c in cache_checks(one_off) if not c.passed}
    assert failed == {"replicate_d", "replicate_agreement"}


def test_thresholds_exist_only_for_calibrated_eta():
    assert set(THRESHOLDS) == {0.0, 0.8}
    assert thresholds_for(0.8).eta == 0.8
    assert thresholds_for(0.0).expects_no_position_bias
    assert not thresholds_for(0.8).expects_no_position_bias
    with pytest.raises(ValueError, match=r"no thresholds calibrated for eta=0\.5"):
        thresholds_for(0.5)


@pytest.mark.parametrize("eta", [0.0, 0.8])
def test_committed_thresholds_meet_the_budget(eta):
    t = thresholds_for(eta)
    assert t.sessions >= 10_000
    assert t.replicate_p_min == 0.001
    assert t.false_fail["union"] <= 0.001
    assert 0.6 <= t.spearman_min <= 0.85
