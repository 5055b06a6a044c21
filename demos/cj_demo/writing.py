"""The words of the cj-demo report: its setup line, a reading of each arm, a console summary."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from demos.cj_demo.design import Design
from demos.cj_demo.report import ArmOutcome


def setup_line(design: Design, args: argparse.Namespace) -> str:
    rater = (
        "the mock's Bradley–Terry rater"
        if args.provider == "mock"
        else f"{args.provider} {args.model or '(its default model)'}"
    )
    where = args.service_url or "services started on the embedded default"
    return (
        f"Seed {design.seed}, {design.n_essays} essays, {len(design.pairings)} comparisons "
        f"({len(design.replicate_pairs)} replicate pairs), σ = {design.sigma}, judged by "
        f"{rater}, through {where}."
    )


def _arm(outcomes: Sequence[ArmOutcome], name: str) -> ArmOutcome | None:
    return next((o for o in outcomes if o.run.arm.name == name), None)


def _calls(o: ArmOutcome) -> str:
    return f"{o.run.record.requests} requests made {o.run.record.provider_calls:.0f} provider calls"


def _replicates(o: ArmOutcome) -> str:
    r = o.stats.replicate
    return (
        f"{r.d} of {len(r.pmf) - 1} replicate pairs disagreed against {r.expected:.1f} expected "
        f"under independent judgements (p = {r.p_value:.2g})"
    )


def _recovery(o: ArmOutcome) -> str:
    s = o.stats
    return f"Spearman {s.spearman:.3f}, RMSE {s.rmse:.2f}, SSR {s.ssr:.3f}"


def _position(o: ArmOutcome) -> str:
    s = o.stats
    return (
        f"first-position share {s.first_position_share:.3f} "
        f"[{s.first_ci95[0]:.3f}, {s.first_ci95[1]:.3f}], η̂ = {s.eta_hat:.2f} ± {s.eta_se:.2f}"
    )


def reading(outcomes: Sequence[ArmOutcome], *, calibrated: bool, args: argparse.Namespace) -> str:
    """One paragraph per arm present, with its numbers. Without a rater whose truth is
    known (a real provider), only what the service proves is judged; the rest is reported."""
    if not calibrated:
        return _described(outcomes)
    paragraphs = []
    if fresh := _arm(outcomes, "fresh"):
        paragraphs.append(
            f"**Fresh.** {_calls(fresh)}, none served from a cache, every provider request id "
            f"distinct. {_replicates(fresh)}: the judgements vary as independent judgements "
            f"should. The fit recovers the true abilities: {_recovery(fresh)}."
        )
    if cache := _arm(outcomes, "cache"):
        paragraphs.append(
            f"**Cache.** The same session with `cache_mode: development`: {_calls(cache)}. "
            f"{_replicates(cache)}: a perfectly consistent super-rater. Its recovery "
            f"({_recovery(cache)}) does not give it away: only the call count, the cache flags "
            "and the replicate test do, which is why production refuses any response cache."
        )
    if biased := _arm(outcomes, "bias-randomized"):
        paragraphs.append(
            f"**Position bias η = {args.position_bias}, order randomized.** The service showed "
            f"{biased.stats.swapped_share:.0%} of the requests swapped; the rater's preference "
            f"for the first essay is measured ({_position(biased)}) and, being random with "
            f"respect to the essays, costs little: {_recovery(biased)}; a plain fit without η "
            f"still has RMSE {biased.stats.rmse_fixed:.2f}."
        )
    if as_sent := _arm(outcomes, "bias-as-sent"):
        paragraphs.append(
            f"**The same rater, essays as sent** (the caller's order: lower id first). Its "
            f"{_position(as_sent)}, but now the bias lands on whichever essay the caller "
            f"happens to put first. A plain fit without η, what most CJ consumers fit, has "
            f"RMSE {as_sent.stats.rmse_fixed:.2f}, and its errors follow each essay's "
            f"first-minus-second count (correlation {as_sent.stats.distortion_corr:.2f}): "
            "essays that the caller tends to send first are scored up. Counterbalancing turns "
            "that systematic error into noise; fitting η removes most of what is left "
            f"({_recovery(as_sent)})."
        )
    return "\n\n".join(paragraphs)


def _described(outcomes: Sequence[ArmOutcome]) -> str:
    """The reading of a session whose true abilities are not known to be the rater's, such as
    a real provider's or a design the thresholds were not simulated for: only the service's
    own checks pass or fail; the statistics are reported."""
    paragraphs = [
        "The rater's truth is not known here (a real provider, or a design the thresholds were "
        "not simulated for), so only what the service proves is pass/fail: fresh calls, no "
        "cache flag, distinct call ids, the report's counts and exactly-once replays. The "
        "rest describes the judge."
    ]
    for o in outcomes:
        r, s = o.stats.replicate, o.stats
        paragraphs.append(
            f"**`{o.run.arm.name}`.** {_calls(o)}. Repetition stability: {r.agreement:.0%} of "
            f"replicate pairs got the same winner ({r.d} of {len(r.pmf) - 1} disagreed); "
            f"{_position(o)}; agreement with the intended abilities: Spearman "
            f"{s.spearman:.3f}."
        )
    return "\n\n".join(paragraphs)


def summary_lines(outcomes: Sequence[ArmOutcome]) -> list[str]:
    """A console table: one line per arm."""
    lines = [
        f"{'arm':<16} {'calls/req':>9} {'D (exp)':>11} {'p':>8} {'Spearman':>8} "
        f"{'SSR':>6} {'first':>6}  verdict"
    ]
    for o in outcomes:
        r, s, record = o.stats.replicate, o.stats, o.run.record
        failed = [c.name for c in o.checks if not c.passed]
        verdict = "pass" if not failed else "FAIL: " + ", ".join(failed)
        lines.append(
            f"{o.run.arm.name:<16} {record.provider_calls:>4.0f}/{record.requests:<4} "
            f"{r.d:>4} ({r.expected:>4.1f}) {r.p_value:>8.2g} {s.spearman:>8.3f} "
            f"{s.ssr:>6.3f} {s.first_position_share:>6.3f}  {verdict}"
        )
    return lines
