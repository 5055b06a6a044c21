"""The analysis of one arm of a CJ session: BT recovery, the replicate test and position bias."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from demos.cj_demo.bt import BTFit, FloatArray, fit_bt, logistic
from demos.cj_demo.design import Design
from demos.cj_demo.thresholds import Thresholds
from services.llm_provider_service.position_bias.stats import binomial_two_sided_p, wilson_interval

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


# eq=False: the generated __eq__ would compare numpy arrays, which has no truth value.
@dataclass(frozen=True, eq=False)
class Judged:
    """What one arm of a session produced: one entry per pairing, in pairing order.

    `first`/`second` are the item indices as presented; `randomized` says the service chose
    the order (essay_order="randomized") rather than presenting the caller's order.
    """

    first: IntArray
    second: IntArray
    first_won: BoolArray
    randomized: bool

    def __post_init__(self) -> None:
        if not self.first.shape == self.second.shape == self.first_won.shape:
            raise ValueError("first, second and first_won must have the same shape")

    @property
    def winner(self) -> IntArray:
        """The item index of the winner of each pairing."""
        return np.where(self.first_won, self.first, self.second)

    @classmethod
    def from_outcomes(
        cls, design: Design, swapped: Sequence[bool], winner: Sequence[int], *, randomized: bool
    ) -> Judged:
        """Build an arm from each pairing's presentation (swapped: essay_b was shown first) and
        winner (an item index). Raises `ValueError` on a length mismatch or a winner that is
        neither of its pairing's essays."""
        a, b = design.caller_order()
        flipped = np.asarray(swapped, dtype=np.bool_)
        won = np.asarray(winner, dtype=np.int64)
        if flipped.shape != a.shape or won.shape != a.shape:
            raise ValueError(f"need {a.size} presentations and winners, one per pairing")
        if not np.all((won == a) | (won == b)):
            bad = int(np.flatnonzero((won != a) & (won != b))[0])
            raise ValueError(f"pairing {bad}: winner {won[bad]} is neither of its essays")
        first = np.where(flipped, b, a)
        second = np.where(flipped, a, b)
        return cls(first, second, won == first, randomized)


def poisson_binomial_pmf(q: NDArray[np.float64]) -> FloatArray:
    """P(D = d), d = 0..len(q), for D the number of successes of independent Bernoulli(q_k).

    Exact by dynamic programming (one convolution per trial). Raises `ValueError` unless q is
    1-d with every q_k in [0, 1].
    """
    probabilities = np.asarray(q, dtype=np.float64)
    if probabilities.ndim != 1 or np.any((probabilities < 0) | (probabilities > 1)):
        raise ValueError("q must be a 1-d array of probabilities")
    pmf = np.zeros(probabilities.size + 1)
    pmf[0] = 1.0
    for k, qk in enumerate(probabilities):
        pmf[1 : k + 2] = pmf[1 : k + 2] * (1.0 - qk) + pmf[: k + 1] * qk
        pmf[0] *= 1.0 - qk
    return pmf


# eq=False: the generated __eq__ would compare numpy arrays, which has no truth value.
@dataclass(frozen=True, eq=False)
class ReplicateTest:
    """The exact test of D, the replicate pairs whose winners differ, against fresh judgements.

    `pmf` is the H0 distribution of D; `expected` its mean; `p_value` two-sided,
    min(1, 2·min(P(D <= d), P(D >= d))); agreements are 1 - D/K and its H0 expectation.
    """

    d: int
    expected: float
    p_value: float
    agreement: float
    expected_agreement: float
    pmf: FloatArray


def replicate_test(design: Design, judged: Judged, *, eta: float) -> ReplicateTest:
    """Test the replicate pairs of `judged` against independent BT judgements.

    Under H0 pair k disagrees with probability q_k = p(1 - p') + (1 - p)p', where p and p' are
    the true P(essay_a wins) of the original and of the replicate, given the true θ, the true
    `eta` and each one's own presentation order. Raises `ValueError` without replicate pairs.
    """
    pairs = np.array(design.replicate_pairs, dtype=np.int64).reshape(-1, 2)
    if not pairs.size:
        raise ValueError("the design has no replicate pairs")
    a = design.caller_order()[0]
    p_first = logistic(eta + design.theta[judged.first] - design.theta[judged.second])
    p_a = np.where(judged.first == a, p_first, 1.0 - p_first)
    p, p_rep = p_a[pairs[:, 0]], p_a[pairs[:, 1]]
    q = p * (1.0 - p_rep) + (1.0 - p) * p_rep
    winner = judged.winner
    d = int(np.count_nonzero(winner[pairs[:, 0]] != winner[pairs[:, 1]]))
    pmf = poisson_binomial_pmf(q)
    tail = min(float(pmf[: d + 1].sum()), float(pmf[d:].sum()))
    return ReplicateTest(
        d=d,
        expected=float(q.sum()),
        p_value=min(1.0, 2.0 * tail),
        agreement=1.0 - d / len(pairs),
        expected_agreement=1.0 - float(q.mean()),
        pmf=pmf,
    )


# eq=False: the generated __eq__ would compare numpy arrays, which has no truth value.
@dataclass(frozen=True, eq=False)
class SessionStats:
    """Every metric of one arm. Recovery metrics compare the η-free fit with the true θ.

    `coverage` is the share of essays with |θ̂ - θ| <= 1.96·SE; `z_sd` the SD (ddof=1) of
    (θ̂ - θ)/SE. The first-position figures count all judgements; they measure position bias
    only when `randomized_judgements` equals `judgements` (otherwise the caller's order is
    confounded with them). `distortion_corr` is corr(θ̂ - θ, F - S) in the η = 0 fit, with F - S
    each essay's first minus second presentations; `distortion_corr_adjusted` the same in the
    η-free fit, where fitting η removes the distortion.
    """

    fit: BTFit
    fit_fixed: BTFit
    judgements: int
    spearman: float
    pearson: float
    rmse: float
    mean_se: float
    ssr: float
    ssr_kinnear: float
    coverage: float
    z_sd: float
    infit: float
    outfit: float
    spearman_fixed: float
    rmse_fixed: float
    replicate: ReplicateTest
    first_position_wins: int
    randomized_judgements: int
    first_position_share: float
    first_ci95: tuple[float, float]
    first_p_value: float
    swapped_share: float
    eta_hat: float
    eta_se: float
    eta_z: float
    distortion_corr: float
    distortion_corr_adjusted: float


def analyse(design: Design, judged: Judged, *, eta: float) -> SessionStats:
    """Fit the arm twice (η free and η = 0) and compute every metric and test.

    `eta` is the rater's TRUE η, used only for the replicate test's H0. Raises `ValueError`
    when `judged` does not present each pairing's two essays.
    """
    _check_matches(design, judged)
    n = design.n_essays
    fit = fit_bt(n, judged.first, judged.second, judged.first_won, estimate_eta=True)
    fit_fixed = fit_bt(n, judged.first, judged.second, judged.first_won)
    theta = design.theta - design.theta.mean()
    error = fit.theta - theta
    z = error / fit.se
    wins = int(np.count_nonzero(judged.first_won))
    count = int(judged.first_won.size)
    imbalance = np.bincount(judged.first, minlength=n) - np.bincount(judged.second, minlength=n)
    a = design.caller_order()[0]
    eta_se = fit.eta_se if fit.eta_se is not None else float("nan")  # always set: η was fitted
    return SessionStats(
        fit=fit,
        fit_fixed=fit_fixed,
        judgements=count,
        spearman=_spearman(fit.theta, theta),
        pearson=_pearson(fit.theta, theta),
        rmse=float(np.sqrt(np.mean(error**2))),
        mean_se=float(fit.se.mean()),
        ssr=fit.ssr,
        ssr_kinnear=fit.ssr_kinnear,
        coverage=float(np.mean(np.abs(error) <= 1.96 * fit.se)),
        z_sd=float(np.std(z, ddof=1)),
        infit=fit.infit,
        outfit=fit.outfit,
        spearman_fixed=_spearman(fit_fixed.theta, theta),
        rmse_fixed=float(np.sqrt(np.mean((fit_fixed.theta - theta) ** 2))),
        replicate=replicate_test(design, judged, eta=eta),
        first_position_wins=wins,
        randomized_judgements=count if judged.randomized else 0,
        first_position_share=wins / count,
        first_ci95=wilson_interval(wins, count),
        first_p_value=binomial_two_sided_p(wins, count),
        swapped_share=float(np.mean(judged.first != a)),
        eta_hat=fit.eta,
        eta_se=eta_se,
        eta_z=fit.eta / eta_se if eta_se > 0 else float("nan"),  # 0 only for one-sided data
        distortion_corr=_pearson(fit_fixed.theta - theta, imbalance),
        distortion_corr_adjusted=_pearson(error, imbalance),
    )


@dataclass(frozen=True)
class Check:
    """One pass/fail rule applied to one arm; `rule` reads as the condition that passes."""

    name: str
    rule: str
    value: float | int | str
    passed: bool


def fresh_checks(stats: SessionStats, thresholds: Thresholds) -> list[Check]:
    """The statistical checks a correct arm with fresh judgements passes.

    The replicate test, Spearman, SSR, coverage and z-SD always; with thresholds calibrated at
    η = 0 also the first-position test (no bias detected) and the balance of swapped
    presentations. A NaN value fails its check.
    """
    t = thresholds
    checks = [
        _bound(t, "replicate_p", "replicate p", stats.replicate.p_value, t.replicate_p_min),
        _bound(t, "spearman", "Spearman", stats.spearman, t.spearman_min),
        _bound(t, "ssr", "SSR (Wright)", stats.ssr, t.ssr_min),
        _bound(t, "coverage", "95% coverage", stats.coverage, t.coverage_min),
        _bound(t, "z_sd", "z-SD", stats.z_sd, t.z_sd_max, upper=True),
    ]
    if t.expects_no_position_bias:
        share, half = stats.swapped_share, t.swapped_share_halfwidth
        balanced = abs(share - 0.5) <= half
        checks += [
            _bound(
                t, "first_position_p", "first-position p", stats.first_p_value, t.position_p_min
            ),
            _check(t, "swapped_share", f"swapped share within 0.5 ± {half:.3g}", share, balanced),
        ]
    return checks


def cache_checks(stats: SessionStats) -> list[Check]:
    """The super-rater signature of a cache: no replicate pair disagrees, p < 1e-6."""
    r = stats.replicate
    return [
        Check("replicate_d", "D == 0", r.d, r.d == 0),
        Check("replicate_agreement", "agreement == 1.0", r.agreement, r.agreement == 1.0),
        Check("replicate_p", "replicate p < 1e-06", r.p_value, r.p_value < 1e-6),
    ]


def _bound(
    t: Thresholds, name: str, label: str, value: float, limit: float, *, upper: bool = False
) -> Check:
    """The check `value >= limit` (`<=` with `upper`)."""
    passed = value <= limit if upper else value >= limit
    return _check(t, name, f"{label} {'<=' if upper else '>='} {limit:.3g}", value, passed)


def _check(t: Thresholds, name: str, rule: str, value: float, passed: bool) -> Check:
    """A check whose rule quotes its simulated false-fail rate, when calibrated."""
    rate = t.false_fail.get(name)
    suffix = f" (simulated false-fail {rate:.2%})" if rate is not None else ""
    return Check(name, rule + suffix, value, bool(passed))


def _check_matches(design: Design, judged: Judged) -> None:
    a, b = design.caller_order()
    if judged.first.shape != a.shape:
        raise ValueError(f"need {a.size} judgements, one per pairing, got {judged.first.size}")
    straight = (judged.first == a) & (judged.second == b)
    swapped = (judged.first == b) & (judged.second == a)
    if not np.all(straight | swapped):
        raise ValueError("every judgement must present its pairing's two essays")


def _pearson(x: NDArray[np.floating] | IntArray, y: NDArray[np.floating] | IntArray) -> float:
    """Pearson's r, or NaN when either side is constant (np.corrcoef would warn)."""
    dx = np.asarray(x, dtype=np.float64) - np.mean(x)
    dy = np.asarray(y, dtype=np.float64) - np.mean(y)
    scale = float(np.sqrt(np.sum(dx**2) * np.sum(dy**2)))
    return float(np.sum(dx * dy)) / scale if scale > 0 else float("nan")


def _spearman(x: FloatArray, y: FloatArray) -> float:
    """Spearman's rho as Pearson's r of ranks; abilities are continuous, so ties do not occur."""
    return _pearson(np.argsort(np.argsort(x)), np.argsort(np.argsort(y)))
