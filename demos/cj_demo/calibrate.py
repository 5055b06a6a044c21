"""Monte Carlo calibration of the CJ demo's pass/fail thresholds from simulated correct sessions."""

from __future__ import annotations

import argparse
import math
import operator
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from demos.cj_demo.analysis import Judged, SessionStats, analyse, cache_checks, fresh_checks
from demos.cj_demo.bt import FloatArray, logistic
from demos.cj_demo.calibration_report import (
    Calibration,
    quantile,
    render_document,
    render_thresholds,
)
from demos.cj_demo.design import DEFAULT_SEED as DESIGN_SEED
from demos.cj_demo.design import Design, make_design
from demos.cj_demo.thresholds import Thresholds
from services.llm_provider_service.position_bias.stats import binomial_two_sided_p

ETAS = (0.0, 0.8)
DEFAULT_SEED = 2026
# The share of correct sessions one calibrated check may fail; with the replicate test's own
# ~0.06% this keeps the union of all checks near or below 0.1%.
CHECK_BUDGET = 1e-4
POSITION_LEVELS = (1e-3, 1e-4, 1e-5)  # candidate first-position p thresholds, loosest first
BALANCE_MULTIPLES = (3.0, 3.5, 4.0, 4.5, 5.0)  # candidate swap-share half-widths, in binomial SDs
THRESHOLDS_PATH = Path(__file__).with_name("thresholds.py")
DOC_PATH = Path(__file__).resolve().parents[2] / "documentation" / "cj-demo-calibration.md"
# Per-session metrics tabulated in the report, as attribute paths into `SessionStats`.
METRICS = (
    "replicate.p_value", "spearman", "ssr", "coverage", "z_sd", "first_p_value", "swapped_share",
    "replicate.d", "spearman_fixed", "pearson", "rmse", "mean_se", "ssr_kinnear", "infit",
    "outfit", "first_position_share", "eta_hat", "eta_z",
)  # fmt: skip


def simulate(
    design: Design,
    *,
    eta: float,
    order: Literal["randomized", "as_sent"],
    cache: bool,
    rng: np.random.Generator,
) -> Judged:
    """One arm of a session judged by the BT rater with first-position effect `eta`.

    With `order="randomized"` each request is presented swapped with probability 1/2; with
    "as_sent" the caller's essay_a is always first. With `cache` every replicate gets its
    original's response (caller-level winner and presentation), as a request-keyed cache would.
    """
    a, b = design.caller_order()
    swapped = rng.random(a.size) < 0.5 if order == "randomized" else np.zeros(a.size, bool)
    first, second = np.where(swapped, b, a), np.where(swapped, a, b)
    first_won = rng.random(a.size) < logistic(eta + design.theta[first] - design.theta[second])
    if cache:
        for original, repeat in design.replicate_pairs:
            first[repeat], second[repeat] = first[original], second[original]
            first_won[repeat] = first_won[original]
    return Judged(first, second, first_won, randomized=order == "randomized")


def run_sessions(
    design: Design | None,
    eta: float,
    count: int,
    seed: np.random.SeedSequence,
    *,
    cache: bool = False,
    tick: Callable[[], object] | None = None,
) -> list[SessionStats]:
    """Analyse `count` simulated randomized sessions; a None `design` draws one per session."""
    out = []
    for child in seed.spawn(count):
        rng = np.random.default_rng(child)
        used = design if design is not None else make_design(seed=int(rng.integers(2**31)))
        judged = simulate(used, eta=eta, order="randomized", cache=cache, rng=rng)
        out.append(analyse(used, judged, eta=eta))
        if tick is not None:
            tick()
    return out


def false_fail(stats: Sequence[SessionStats], thresholds: Thresholds) -> dict[str, float]:
    """The share of `stats` failing each fresh check, and any of them ("union")."""
    results = [fresh_checks(s, thresholds) for s in stats]
    failed = np.array([[not c.passed for c in checks] for checks in results])
    rates = {c.name: float(rate) for c, rate in zip(results[0], failed.mean(axis=0), strict=True)}
    return rates | {"union": float(failed.any(axis=1).mean())}


def binomial_sizes(n: int) -> tuple[dict[float, float], dict[float, float]]:
    """Exact false-fail on n fair coins of each candidate first-position p threshold, and of
    each candidate swap-share half-width (in binomial SDs)."""
    k = np.arange(n + 1)
    log_pmf = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in k]
    pmf = np.exp(np.array(log_pmf) - n * math.log(2))
    p_values = np.array([binomial_two_sided_p(int(i), n) for i in k])
    position = {v: float(pmf[p_values < v].sum()) for v in POSITION_LEVELS}
    sd = math.sqrt(0.25 / n)
    balance = {m: float(pmf[np.abs(k / n - 0.5) > m * sd + 1e-12].sum()) for m in BALANCE_MULTIPLES}
    return position, balance


def choose_thresholds(
    eta: float, stats: Sequence[SessionStats], sizes: tuple[dict[float, float], dict[float, float]]
) -> Thresholds:
    """Round numbers just below the 0.01% quantiles (above the 99.99% for z-SD), and the
    loosest position rules whose exact false-fail is within `CHECK_BUDGET`."""
    n = len(stats[0].fit.p)
    level = next(v for v, size in sizes[0].items() if size <= CHECK_BUDGET)
    multiple = next(m for m, size in sizes[1].items() if size <= CHECK_BUDGET)
    chosen = Thresholds(
        eta=eta,
        spearman_min=math.floor(quantile(_values(stats, "spearman"), CHECK_BUDGET) * 100) / 100,
        ssr_min=math.floor(quantile(_values(stats, "ssr"), CHECK_BUDGET) * 100) / 100,
        coverage_min=math.floor(quantile(_values(stats, "coverage"), CHECK_BUDGET) * 100) / 100,
        z_sd_max=math.ceil(quantile(_values(stats, "z_sd"), 1 - CHECK_BUDGET) * 100) / 100,
        position_p_min=level,
        swapped_share_halfwidth=multiple * math.sqrt(0.25 / n),
        sessions=len(stats),
    )
    return replace(chosen, false_fail=false_fail(stats, chosen))


def calibrate(
    eta: float, sessions: int, seed: np.random.SeedSequence, tick: Callable[[], object]
) -> Calibration:
    """Calibrate at `eta` on the fixed demo design, then the robustness and cache runs."""
    design = make_design(seed=DESIGN_SEED)
    fixed, varied, cached = seed.spawn(3)
    side = max(10, sessions // 10)
    stats = run_sessions(design, eta, sessions, fixed, tick=tick)
    sizes = binomial_sizes(len(design.pairings))
    thresholds = choose_thresholds(eta, stats, sizes)
    robust = run_sessions(None, eta, side, varied, tick=tick)
    cache = run_sessions(design, eta, side, cached, cache=True, tick=tick)
    return Calibration(
        thresholds=thresholds,
        metrics={name: _values(stats, name) for name in METRICS},
        robustness=false_fail(robust, thresholds),
        robustness_sessions=side,
        robust_spearman=_values(robust, "spearman"),
        cache_detected=float(np.mean([all(c.passed for c in cache_checks(s)) for s in cache])),
        cache_max_p=max(s.replicate.p_value for s in cache),
        exact_sizes=sizes,
        rules={c.name: c.rule for c in fresh_checks(stats[0], thresholds)},
    )


def _values(stats: Sequence[SessionStats], name: str) -> FloatArray:
    return np.array([operator.attrgetter(name)(s) for s in stats], dtype=np.float64)


def main(
    argv: Sequence[str] | None = None,
    *,
    thresholds_path: Path = THRESHOLDS_PATH,
    doc_path: Path = DOC_PATH,
) -> int:
    """The CLI: calibrate both η, print the tables, and with --write write both outputs."""
    parser = argparse.ArgumentParser(prog="python -m demos.cj_demo.calibrate", description=__doc__)
    parser.add_argument("--sessions", type=int, default=10_000, help="sessions per η [10000]")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"[{DEFAULT_SEED}]")
    parser.add_argument("--write", action="store_true", help="write thresholds.py and the doc")
    args = parser.parse_args(argv)
    if args.sessions < 10:
        parser.error("--sessions must be at least 10")
    command = f"pdm run python -m demos.cj_demo.calibrate --sessions {args.sessions}"
    command += f" --seed {args.seed} --write"
    started = time.perf_counter()
    seeds = np.random.SeedSequence(args.seed).spawn(len(ETAS))
    total = len(ETAS) * (args.sessions + 2 * max(10, args.sessions // 10))
    with tqdm(total=total, file=sys.stderr, unit="session") as bar:
        results = [
            calibrate(eta, args.sessions, s, bar.update) for eta, s in zip(ETAS, seeds, strict=True)
        ]
    document = render_document(results, command=command, seed=args.seed)
    print(document)
    print(f"calibrated in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.write:
        template = THRESHOLDS_PATH.read_text(encoding="utf-8")
        thresholds_path.write_text(render_thresholds(results, command, template), encoding="utf-8")
        doc_path.parent.mkdir(parents=True, exist_ok=True)
        doc_path.write_text(document, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
