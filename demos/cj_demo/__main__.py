"""`pdm run cj-demo`: run a CJ session through the service, analyse it, write the report.

Without `--service-url` it starts the service on its embedded default (development, the
mock as a Bradley-Terry rater, the development cache enabled for the `cache` arm), one
process per rater position bias, and stops it afterwards. Exit code 0 when every check of
every arm passed, 1 when one failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
from tqdm import tqdm

from common_core.client import LLMProviderClient, RequestRejectedError
from common_core.enums import LLMProviderType
from demos.cj_demo.analysis import Check, Judged, SessionStats, analyse, cache_checks, fresh_checks
from demos.cj_demo.design import DEFAULT_SEED, Design, make_design
from demos.cj_demo.essays import essay_texts
from demos.cj_demo.plots import agreement_figure, position_figure, recovery_figure
from demos.cj_demo.report import ArmOutcome, write_report
from demos.cj_demo.service import demo_environment, free_port, running_service
from demos.cj_demo.session import Arm, ArmRun, run_arm, service_checks, standard_arms
from demos.cj_demo.thresholds import THRESHOLDS
from demos.cj_demo.writing import reading, setup_line, summary_lines

DEFAULT_ARMS = ("fresh", "cache", "bias-randomized", "bias-as-sent")
CALIBRATED_DESIGN = (30, 10, 5, 1.5)  # essays, rounds, repeat rounds, σ: thresholds.py
ROOT = Path(__file__).resolve().parents[2]
FIGURES = (
    ("true vs fitted ability, per arm", "cj-demo-recovery.png"),
    (
        "replicate disagreement against its distribution under fresh judgements",
        "cj-demo-agreement.png",
    ),
    ("first-position share per arm", "cj-demo-position.png"),
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cj-demo", description=__doc__)
    add = parser.add_argument
    add("--service-url", help="a running service; default: start one per rater bias")
    add(
        "--api-key",
        default=os.environ.get("CJ_DEMO_API_KEY"),
        help="the caller key a service with callers needs (default: $CJ_DEMO_API_KEY)",
    )
    add("--arms", default=",".join(DEFAULT_ARMS), help="comma-separated, from %(default)s")
    add("--position-bias", type=float, default=0.8, help="η of the biased arms' rater")
    add("--provider", default="mock", choices=[p.value for p in LLMProviderType])
    add("--model", help="model_override for every request (default: the provider's)")
    add("--markers", action=argparse.BooleanOptionalAction, help="ability markers in essays")
    add("--essays", type=int, default=30)
    add("--rounds", type=int, default=10, help="balanced rounds of new pairs")
    add("--repeat-rounds", type=int, default=5, help="rounds repeated verbatim (replicates)")
    add("--sigma", type=float, default=1.5, help="SD of the true abilities, in logits")
    add("--seed", type=int, default=DEFAULT_SEED)
    add("--concurrency", type=int, default=16)
    add("--out", type=Path, default=ROOT / "documentation", help="where the report goes")
    args = parser.parse_args(argv)
    known = standard_arms(args.position_bias)
    args.arms = [name.strip() for name in args.arms.split(",") if name.strip()]
    if not args.arms or any(name not in known for name in args.arms):
        parser.error(f"--arms takes names from {', '.join(known)}")
    if args.markers is None:
        args.markers = args.provider == LLMProviderType.MOCK.value
    return args


def _auth(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def calibrated(args: argparse.Namespace) -> bool:
    """Whether the statistical thresholds apply: they were simulated for the default design
    (any seed) with a rater whose truth is known, the mock's Bradley-Terry rater."""
    design = (args.essays, args.rounds, args.repeat_rounds, args.sigma)
    mock = args.provider == LLMProviderType.MOCK.value
    return design == CALIBRATED_DESIGN and mock and bool(args.markers)


def arm_checks(run: ArmRun, stats: SessionStats, args: argparse.Namespace) -> list[Check]:
    """The pass/fail rules of one arm: what the service proves always, the statistics only
    where `calibrated` (otherwise they are reported without a verdict)."""
    checks = service_checks(run, mock_rater=args.provider == LLMProviderType.MOCK.value)
    thresholds = THRESHOLDS.get(run.arm.position_bias)
    known_truth = calibrated(args)
    if run.arm.role == "cache" and known_truth:
        checks += cache_checks(stats)
    elif run.arm.role == "fresh" and known_truth and thresholds is not None:
        checks += fresh_checks(stats, thresholds)
    return checks


async def run_arms(
    base_url: str,
    design: Design,
    texts: list[str],
    arms: list[Arm],
    args: argparse.Namespace,
    notes: list[str],
) -> list[ArmOutcome]:
    """Run `arms` one after the other; a cache arm the service refuses (as staging and
    production must) is left out with a note in `notes`."""
    provider = LLMProviderType(args.provider)
    outcomes = []
    async with (
        LLMProviderClient(base_url, timeout=60.0, api_key=args.api_key) as client,
        httpx.AsyncClient(base_url=base_url, timeout=30.0, headers=_auth(args.api_key)) as http,
    ):
        for arm in arms:
            try:
                with tqdm(total=len(design.pairings), desc=arm.name, unit="judgement") as bar:
                    run = await run_arm(
                        client, http, design, texts, arm,
                        provider=provider, model=args.model, concurrency=args.concurrency,
                        on_answer=lambda: bar.update(1),
                    )  # fmt: skip
            except RequestRejectedError as refused:
                if not (arm.cache and refused.code == "CACHE_NOT_ALLOWED"):
                    raise
                notes.append(
                    f"**Cache arm refused.** {base_url} answered 400 CACHE_NOT_ALLOWED to "
                    "`cache_mode: development`, as a staging or production service must: no "
                    "judgement there can come from a cache."
                )
                continue
            judged = Judged.from_outcomes(
                design,
                run.swapped,
                run.winners(design),
                randomized=arm.essay_order.value == "randomized",
            )
            stats = analyse(design, judged, eta=arm.position_bias)
            outcomes.append(ArmOutcome(run, stats, arm_checks(run, stats, args)))
    return outcomes


def run_session(
    design: Design, arms: list[Arm], args: argparse.Namespace, notes: list[str]
) -> list[ArmOutcome]:
    texts = essay_texts(design, markers=args.markers)
    if args.service_url:
        url = args.service_url.rstrip("/")
        return asyncio.run(run_arms(url, design, texts, arms, args, notes))
    outcomes: dict[str, ArmOutcome] = {}
    for bias in sorted({arm.position_bias for arm in arms}):
        group = [arm for arm in arms if arm.position_bias == bias]
        port = free_port()
        env = demo_environment(port, position_bias=bias, cache=True, provider=args.provider)
        with running_service(env, port) as base_url:
            for outcome in asyncio.run(run_arms(base_url, design, texts, group, args, notes)):
                outcomes[outcome.run.arm.name] = outcome
    return [outcomes[arm.name] for arm in arms if arm.name in outcomes]


def write_outputs(
    design: Design, outcomes: list[ArmOutcome], args: argparse.Namespace, notes: list[str]
) -> Path:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    caption = setup_line(design, args)
    recovery_figure(
        [(o.run.arm.name, design, o.stats) for o in outcomes], out / FIGURES[0][1], caption=caption
    )
    agreement_figure(
        [(o.run.arm.name, o.stats) for o in outcomes], out / FIGURES[1][1], caption=caption
    )
    position_figure(
        [(o.run.arm.name, o.stats) for o in outcomes], out / FIGURES[2][1], caption=caption
    )
    report = out / "cj-demo.md"
    write_report(
        report,
        design=design,
        outcomes=outcomes,
        setup=caption,
        reading="\n\n".join([reading(outcomes, calibrated=calibrated(args), args=args), *notes]),
        figures=FIGURES,
    )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    design = make_design(
        n_essays=args.essays,
        new_rounds=args.rounds,
        repeat_rounds=args.repeat_rounds,
        sigma=args.sigma,
        seed=args.seed,
    )
    arms_by_name = standard_arms(args.position_bias)
    notes: list[str] = []
    outcomes = run_session(design, [arms_by_name[name] for name in args.arms], args, notes)
    if not outcomes:
        print("no arm could run: " + " ".join(notes), file=sys.stderr)
        return 1
    report = write_outputs(design, outcomes, args, notes)
    for line in summary_lines(outcomes):
        print(line)
    for note in notes:
        print(note.replace("**", ""))
    print(f"report: {report}")
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
