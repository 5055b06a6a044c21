"""A MAP Bradley-Terry fit with an optional first-position effect η, its SEs, SSR and fit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


# eq=False: the generated __eq__ would compare numpy arrays, which has no truth value.
@dataclass(frozen=True, eq=False)
class BTFit:
    """The fit of P(first wins) = logistic(η + θ_first - θ_second).

    `theta` is centred; `se` are the SEs of the centred abilities; `p` is the fitted
    P(first wins) per comparison. `eta_se` is None when η was fixed at 0. `ssr` is Wright's
    separation reliability (sirt's `mle.rel`), `ssr_kinnear` the variant Var/(Var + MSE);
    `infit`/`outfit` are the mean squares of the one judge (the rater) over all comparisons.
    """

    theta: FloatArray
    se: FloatArray
    p: FloatArray
    eta: float
    eta_se: float | None
    ssr: float
    ssr_kinnear: float
    infit: float
    outfit: float
    iterations: int
    converged: bool


def logistic(x: ArrayLike) -> FloatArray:
    """1/(1 + e^-x) without overflow for large |x|."""
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64))))


def fit_bt(
    n_items: int,
    first: ArrayLike,
    second: ArrayLike,
    first_won: ArrayLike,
    *,
    estimate_eta: bool = False,
    ridge: float = 0.1,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> BTFit:
    """Fit θ (and η when `estimate_eta`) by Newton-Raphson on the penalised log-likelihood.

    The prior is N(0, 1/ridge) on each θ and flat on η, so with η fixed at 0 this is
    `choix.opt_pairwise(n_items, data, alpha=ridge / 2)`. The ridge keeps items that win or
    lose everything finite. Iteration stops when the largest step is below `tol`; `converged`
    says whether it did within `max_iter`. SEs come from the centred covariance C·H⁻¹·Cᵀ.
    Raises `ValueError` for mismatched lengths, item indices out of range or ridge < 0.
    """
    x = _design_matrix(n_items, first, second, estimate_eta)
    y = np.asarray(first_won, dtype=np.float64)
    if y.shape != (x.shape[0],):
        raise ValueError("first, second and first_won must have the same length")
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    penalty = np.array([ridge] * n_items + [0.0] * int(estimate_eta))
    beta = np.zeros(x.shape[1])
    converged = False
    iterations = 0
    while iterations < max_iter and not converged:
        iterations += 1
        p = logistic(x @ beta)
        gradient = x.T @ (y - p) - penalty * beta
        step = _newton_step(_information(x, p, penalty), gradient, singular=ridge == 0)
        beta += step
        converged = bool(np.abs(step).max() < tol)
    p = logistic(x @ beta)
    inverse = np.asarray(np.linalg.pinv(_information(x, p, penalty)), np.float64)
    covariance = _centred_covariance(inverse, n_items)
    se = np.sqrt(np.clip(np.diag(covariance)[:n_items], 0.0, None))
    theta = beta[:n_items] - beta[:n_items].mean()
    return BTFit(
        theta=theta,
        se=se,
        p=p,
        eta=float(beta[n_items]) if estimate_eta else 0.0,
        eta_se=float(np.sqrt(covariance[n_items, n_items])) if estimate_eta else None,
        iterations=iterations,
        converged=converged,
        **_reliability(theta, se),
        **_judge_fit(y, p),
    )


def _design_matrix(
    n_items: int, first: ArrayLike, second: ArrayLike, estimate_eta: bool
) -> FloatArray:
    """Rows e_first - e_second, with a column of ones for η appended when it is estimated."""
    f = np.asarray(first, dtype=np.int64)
    s = np.asarray(second, dtype=np.int64)
    if f.ndim != 1 or f.shape != s.shape:
        raise ValueError("first and second must be 1-d and of the same length")
    if f.size and (min(f.min(), s.min()) < 0 or max(f.max(), s.max()) >= n_items):
        raise ValueError(f"item indices must be in 0..{n_items - 1}")
    rows = np.arange(f.size)
    x = np.zeros((f.size, n_items + int(estimate_eta)))
    x[rows, f] += 1.0
    x[rows, s] -= 1.0
    if estimate_eta:
        x[:, n_items] = 1.0
    return x


def _information(x: FloatArray, p: FloatArray, penalty: FloatArray) -> FloatArray:
    """Fisher information Σ p(1-p)·x xᵀ plus the ridge on the θ block."""
    weighted: FloatArray = (x * (p * (1.0 - p))[:, None]).T @ x
    return weighted + np.diag(penalty)


def _newton_step(information: FloatArray, gradient: FloatArray, *, singular: bool) -> FloatArray:
    """Solve H·step = gradient. Without a ridge H is singular along 1 (θ shifts), and with
    one-sided data along η: take the minimum-norm step there, which never moves the sum of θ."""
    if not singular:
        try:
            return np.asarray(np.linalg.solve(information, gradient), np.float64)
        except np.linalg.LinAlgError:
            pass
    return np.asarray(np.linalg.lstsq(information, gradient, rcond=None)[0], np.float64)


def _centred_covariance(covariance: FloatArray, n_items: int) -> FloatArray:
    """C·cov·Cᵀ with C = I - 11ᵀ/n on the θ block: the covariance of the centred θ (and η)."""
    c = np.eye(covariance.shape[0])
    c[:n_items, :n_items] -= 1.0 / n_items
    centred: FloatArray = c @ covariance @ c.T
    return centred


def _reliability(theta: FloatArray, se: FloatArray) -> dict[str, float]:
    """Wright's SSR (Var - MSE)/Var, ddof=1 as sirt's `mle.rel`, and Kinnear's Var/(Var + MSE)."""
    variance = float(np.var(theta, ddof=1))
    mse = float(np.mean(se**2))
    if variance == 0.0:
        return {"ssr": float("nan"), "ssr_kinnear": float("nan")}
    return {"ssr": (variance - mse) / variance, "ssr_kinnear": variance / (variance + mse)}


def _judge_fit(y: FloatArray, p: FloatArray) -> dict[str, float]:
    """Infit Σ(y-p)²/Σp(1-p) and outfit mean((y-p)²/(p(1-p))) of the one judge."""
    variance = p * (1.0 - p)
    residual = (y - p) ** 2
    if not y.size:
        return {"infit": float("nan"), "outfit": float("nan")}
    # A saturated p (an unbounded η with one-sided data) has no variance: report inf, not a warning.
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "infit": float(residual.sum() / variance.sum()),
            "outfit": float(np.mean(residual / variance)),
        }
