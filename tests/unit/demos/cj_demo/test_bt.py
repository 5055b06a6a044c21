"""The MAP Bradley-Terry fit: choix agreement, recovery, η, SEs, SSR and fit statistics."""

from __future__ import annotations

import math

import choix
import numpy as np
import pytest
from scipy import optimize

from demos.cj_demo.bt import fit_bt, logistic
from demos.cj_demo.design import make_design


def simulated_session(eta, seed, *, comparisons=None, n=30):
    """(theta, first, second, first_won): the default design, or `comparisons` random pairs."""
    rng = np.random.default_rng(seed)
    if comparisons is None:
        design = make_design(seed=seed)
        theta = design.theta
        a, b = design.caller_order()
    else:
        theta = rng.normal(0.0, 1.5, n)
        theta -= theta.mean()
        a = rng.integers(0, n, comparisons)
        b = (a + rng.integers(1, n, comparisons)) % n
    swapped = rng.random(a.size) < 0.5
    first, second = np.where(swapped, b, a), np.where(swapped, a, b)
    first_won = rng.random(a.size) < logistic(eta + theta[first] - theta[second])
    return theta, first, second, first_won


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fixed_eta_fit_equals_choix_map(seed):
    _, first, second, first_won = simulated_session(0.0, seed)
    fit = fit_bt(30, first, second, first_won, ridge=0.1)
    data = [(f, s) if won else (s, f) for f, s, won in zip(first, second, first_won, strict=True)]
    # choix penalises alpha·Σθ², so its prior variance is 1/(2·alpha): alpha = ridge / 2. A tight
    # tol makes choix's own optimiser error negligible next to 1e-6.
    reference = choix.opt_pairwise(30, data, alpha=0.05, tol=1e-10)
    np.testing.assert_allclose(fit.theta, reference, atol=1e-6)
    assert fit.converged
    assert fit.eta == 0.0
    assert fit.eta_se is None


def test_recovers_theta_on_a_large_session():
    theta, first, second, first_won = simulated_session(0.0, 11, comparisons=6_000)
    fit = fit_bt(30, first, second, first_won)
    assert fit.converged
    assert np.sqrt(np.mean((fit.theta - theta) ** 2)) < 0.25
    assert np.corrcoef(fit.theta, theta)[0, 1] > 0.99
    # The SEs describe the error: none is off by more than 4 SE, and they are small.
    assert np.all(np.abs(fit.theta - theta) < 4 * fit.se)
    assert np.all(fit.se < 0.3)
    assert fit.ssr > 0.97


def test_recovers_eta_when_present():
    theta, first, second, first_won = simulated_session(0.8, 12, comparisons=6_000)
    fit = fit_bt(30, first, second, first_won, estimate_eta=True)
    assert fit.converged
    assert fit.eta_se is not None
    assert 0.0 < fit.eta_se < 0.06
    assert abs(fit.eta - 0.8) < 3 * fit.eta_se
    assert np.sqrt(np.mean((fit.theta - theta) ** 2)) < 0.25
    # Leaving η out biases nothing here (the order is random) but fits the data worse.
    plain = fit_bt(30, first, second, first_won)
    assert plain.eta == 0.0
    assert fit.infit < plain.infit


def test_eta_is_near_zero_without_position_bias():
    _, first, second, first_won = simulated_session(0.0, 13, comparisons=6_000)
    fit = fit_bt(30, first, second, first_won, estimate_eta=True)
    assert fit.eta_se is not None
    assert abs(fit.eta) < 3 * fit.eta_se


def test_formulas_on_two_items():
    # Item 0 is presented first four times and wins three. By symmetry θ̂ = (t, -t) with
    # 3 - 4p - r·t = 0 and p = logistic(2t). The centred covariance is the inverse information
    # along (1, -1)/√2 only: SE² = 1 / (2(2w + r)) with w = 4p(1 - p).
    r = 0.1
    fit = fit_bt(2, [0, 0, 0, 0], [1, 1, 1, 1], [True, True, True, False], ridge=r)
    t = optimize.brentq(lambda t: 3 - 4 * float(logistic(2 * t)) - r * t, 0.0, 5.0, xtol=1e-14)
    p = float(logistic(2 * t))
    w = 4 * p * (1 - p)
    se2 = 1 / (2 * (2 * w + r))
    np.testing.assert_allclose(fit.theta, [t, -t], atol=1e-10)
    np.testing.assert_allclose(fit.p, [p] * 4, atol=1e-10)
    np.testing.assert_allclose(fit.se, [math.sqrt(se2)] * 2, atol=1e-10)
    variance = 2 * t**2  # ddof=1 over (t, -t)
    assert fit.ssr == pytest.approx((variance - se2) / variance, abs=1e-9)
    assert fit.ssr_kinnear == pytest.approx(variance / (variance + se2), abs=1e-9)
    assert fit.infit == pytest.approx((3 * (1 - p) ** 2 + p**2) / (4 * p * (1 - p)), abs=1e-9)
    assert fit.outfit == pytest.approx((3 * (1 - p) / p + p / (1 - p)) / 4, abs=1e-9)


def test_the_ridge_keeps_an_all_wins_item_finite():
    _, first, second, first_won = simulated_session(0.0, 21)
    won_by_0 = np.where(first == 0, True, np.where(second == 0, False, first_won))
    fit = fit_bt(30, first, second, won_by_0)
    assert fit.converged
    assert np.all(np.isfinite(fit.theta))
    assert np.all(np.isfinite(fit.se))
    assert 0.0 < fit.theta[0] < 8.0
    assert fit.theta[0] == fit.theta.max()
    # Almost without the ridge the all-wins item runs away: the ridge is what holds it.
    loose = fit_bt(30, first, second, won_by_0, ridge=1e-6)
    assert loose.theta[0] > 2 * fit.theta[0]


def test_one_sided_data_sends_eta_away_without_crashing():
    # Every first-presented essay wins: η is unbounded (no prior on it), θ stays finite.
    a, b = make_design().caller_order()
    fit = fit_bt(30, a, b, np.ones(a.size, dtype=bool), estimate_eta=True)
    assert fit.eta > 10
    assert np.all(np.isfinite(fit.theta))
    assert np.all(np.isfinite(fit.se))


def test_an_item_without_comparisons_sits_at_the_prior():
    # Items 0-2 compared among themselves; item 3 never: it stays at the prior mean, finite.
    fit = fit_bt(4, [0, 1, 2, 0], [1, 2, 0, 2], [True, True, False, True])
    assert fit.converged
    assert np.all(np.isfinite(fit.theta))
    assert np.all(np.isfinite(fit.se))
    assert fit.theta[3] == pytest.approx(-fit.theta[:3].sum())
    assert fit.se[3] > fit.se[:3].max()


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((3, [0, 1], [1], [True]), {}, "same length"),
        ((3, [0, 3], [1, 2], [True, False]), {}, "indices"),
        ((3, [0, -1], [1, 2], [True, False]), {}, "indices"),
        ((3, [0, 1], [1, 2], [True]), {}, "same length"),
        ((3, [0, 1], [1, 2], [True, False]), {"ridge": -0.1}, "ridge"),
    ],
)
def test_bad_input_raises(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_bt(*args, **kwargs)
