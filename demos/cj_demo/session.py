"""One arm of a CJ session through the service, and what the service's own records prove.

An arm sends every pairing of the design as a comparison request, round by round (a round's
requests run concurrently; a replicate is only sent once its original has been answered), and
reads the service's provider-call counter and position-bias report before and after.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from common_core.api_models import ComparisonRequest, ComparisonResult, LLMConfigOverrides
from common_core.client import LLMProviderClient, Progress
from common_core.enums import CacheMode, EssayOrder, LLMProviderType, PresentationOrder
from demos.cj_demo.analysis import Check
from demos.cj_demo.design import Design, Pairing
from demos.cj_demo.essays import USER_PROMPT

_MOCK_TAG = re.compile(r"^\[mock-bt: (first|second) won")
_CALLS = "llm_provider_provider_calls"


@dataclass(frozen=True)
class Arm:
    """How one arm asks: essay order, development cache or not, and the rater's true η."""

    name: str
    essay_order: EssayOrder
    cache: bool
    position_bias: float
    role: str  # "fresh": must pass as a correct service; "cache": must show the super-rater;
    # "contrast": reported side by side, not pass/fail
    description: str


def standard_arms(position_bias: float) -> dict[str, Arm]:
    """The arms `cj-demo` knows, by name."""
    randomized, as_sent = EssayOrder.RANDOMIZED, EssayOrder.AS_SENT
    return {
        "fresh": Arm("fresh", randomized, False, 0.0, "fresh", "every request a fresh call"),
        "cache": Arm(
            "cache", randomized, True, 0.0, "cache", "the same session through the dev cache"
        ),
        "bias-randomized": Arm(
            "bias-randomized",
            randomized,
            False,
            position_bias,
            "fresh",
            f"a rater with first-position bias η = {position_bias}, order randomized",
        ),
        "bias-as-sent": Arm(
            "bias-as-sent",
            as_sent,
            False,
            position_bias,
            "contrast",
            "the same rater, essays shown as sent (lower id first)",
        ),
    }


@dataclass(frozen=True)
class ServiceRecord:
    """What the service's counters and report said about one arm."""

    requests: int
    provider_calls: float  # successful calls counted by the service during the arm
    report_judgements: int  # judgements the position-bias report gained during the arm
    report_first_wins: int
    replay_same_request: bool  # a re-POST with a used Idempotency-Key got the same request
    replay_calls: float  # provider calls that re-POST caused (0 for exactly-once)


@dataclass(frozen=True)
class ArmRun:
    arm: Arm
    provider: LLMProviderType
    results: list[ComparisonResult]  # in pairing order
    record: ServiceRecord
    seconds: float

    @property
    def swapped(self) -> list[bool]:
        return [r.presentation_order is PresentationOrder.SWAPPED for r in self.results]

    def winners(self, design: Design) -> list[int]:
        """The winning essay of each pairing, as an item index."""
        return [
            p.essay_a if r.winner.value == "Essay A" else p.essay_b
            for p, r in zip(design.pairings, self.results, strict=True)
        ]


def comparison_request(
    pairing: Pairing,
    design: Design,
    texts: Sequence[str],
    arm: Arm,
    *,
    provider: LLMProviderType,
    model: str | None,
) -> ComparisonRequest:
    """The request of one pairing: replicates differ from their original only in metadata
    and correlation id, never in what defines the judgement."""
    request = ComparisonRequest(
        user_prompt=USER_PROMPT,
        essay_a=texts[pairing.essay_a],
        essay_b=texts[pairing.essay_b],
        correlation_id=uuid.uuid4(),
        llm_config_overrides=LLMConfigOverrides(provider_override=provider, model_override=model),
        metadata={
            "essay_a_id": design.essay_ids[pairing.essay_a],
            "essay_b_id": design.essay_ids[pairing.essay_b],
            "round": pairing.round,
            "pairing": pairing.index,
            "replicate_of": pairing.replicate_of,
            "arm": arm.name,
        },
        essay_order=arm.essay_order,
    )
    if arm.cache:
        return request.model_copy(update={"cache_mode": CacheMode.DEVELOPMENT})
    return request


async def run_arm(
    client: LLMProviderClient,
    http: httpx.AsyncClient,
    design: Design,
    texts: Sequence[str],
    arm: Arm,
    *,
    provider: LLMProviderType,
    model: str | None,
    concurrency: int,
    on_answer: Callable[[], object] = lambda: None,
) -> ArmRun:
    """Send the whole session for `arm`; raises the client's error if any request failed."""
    started = time.monotonic()
    calls_before = await provider_calls(http, provider)
    report_before = await report_counts(http, provider)
    results: list[ComparisonResult] = []

    def progress(_: Progress) -> None:
        on_answer()

    for round_ in design.rounds():
        requests = [
            comparison_request(p, design, texts, arm, provider=provider, model=model)
            for p in round_
        ]
        answers = await client.compare_many(requests, concurrency=concurrency, on_progress=progress)
        results += [a for a in answers if isinstance(a, ComparisonResult)]
    calls = await provider_calls(http, provider) - calls_before
    judgements, first_wins = (
        after - before
        for after, before in zip(await report_counts(http, provider), report_before, strict=True)
    )
    same, replay_calls = await _replay(client, http, results, design, texts, arm, provider, model)
    record = ServiceRecord(len(results), calls, judgements, first_wins, same, replay_calls)
    return ArmRun(arm, provider, results, record, time.monotonic() - started)


async def _replay(
    client: LLMProviderClient,
    http: httpx.AsyncClient,
    results: list[ComparisonResult],
    design: Design,
    texts: Sequence[str],
    arm: Arm,
    provider: LLMProviderType,
    model: str | None,
) -> tuple[bool, float]:
    """M7: a retried POST with a used Idempotency-Key is the same request, not a new call."""
    request = comparison_request(
        design.pairings[0], design, texts, arm, provider=provider, model=model
    )
    key = f"cj-demo-replay-{uuid.uuid4()}"
    first = await client.compare(request, idempotency_key=key)
    before = await provider_calls(http, provider)
    again = await client.compare(request, idempotency_key=key)
    return again.request_id == first.request_id, await provider_calls(http, provider) - before


async def provider_calls(http: httpx.AsyncClient, provider: LLMProviderType) -> float:
    """Successful calls to `provider` the service has counted (`/metrics`)."""
    response = await http.get("/metrics")
    response.raise_for_status()
    total = 0.0
    for family in text_string_to_metric_families(response.text):
        if family.name != _CALLS:
            continue
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == f"{_CALLS}_total"
                and labels.get("provider") == provider.value
                and labels.get("outcome") == "success"
            ):
                total += sample.value
    return total


async def report_counts(http: httpx.AsyncClient, provider: LLMProviderType) -> tuple[int, int]:
    """(judgements, first-position wins) of `provider` in the position-bias report, over all
    its models (a vendor may answer with a dated snapshot of the model asked for)."""
    response = await http.get("/api/v1/position-bias")
    response.raise_for_status()
    entries = [e for e in response.json()["models"] if e["provider"] == provider.value]
    return (
        sum(int(e["judgements"]) for e in entries),
        sum(int(e["first_position_wins"]) for e in entries),
    )


def presented_first_won(result: ComparisonResult) -> bool:
    """Whether the essay shown first won, from the caller's winner and the order shown."""
    caller_a_won = result.winner.value == "Essay A"
    return caller_a_won == (result.presentation_order is PresentationOrder.AS_SENT)


def service_checks(run: ArmRun, *, mock_rater: bool) -> list[Check]:
    """What the service itself must prove about an arm (research M1, M2, M7, the mapping
    back and the report). A cache arm must instead show that answers were shared."""
    record, results = run.record, run.results
    fresh = [r for r in results if not r.served_from_cache]
    randomized = run.arm.essay_order is EssayOrder.RANDOMIZED
    first_wins = sum(presented_first_won(r) for r in fresh) if randomized else 0
    checks = []
    if run.arm.cache:
        checks.append(
            Check(
                "calls",
                "provider calls < requests",
                record.provider_calls,
                record.provider_calls < record.requests,
            )
        )
    else:
        ids = {r.provider_request_id for r in results}
        checks += [
            Check(
                "calls",
                f"provider calls == requests ({record.requests})",
                record.provider_calls,
                record.provider_calls == record.requests,
            ),
            Check(
                "fresh", "served_from_cache false for all", len(fresh), len(fresh) == len(results)
            ),
            Check("ids", "provider_request_id all distinct", len(ids), len(ids) == len(results)),
        ]
    checks += [
        Check(
            "report",
            f"report counts {len(fresh) if randomized else 0} judgements, "
            f"{first_wins} first-position wins",
            f"{record.report_judgements}, {record.report_first_wins}",
            (record.report_judgements, record.report_first_wins)
            == (len(fresh) if randomized else 0, first_wins),
        ),
        Check(
            "replay",
            "a re-POST with a used key: same request, 0 new calls",
            record.replay_calls,
            record.replay_same_request and record.replay_calls == 0,
        ),
    ]
    tagged = [r for r in fresh if _MOCK_TAG.match(r.justification)]
    if mock_rater and tagged:  # the mock's Bradley-Terry rater records what it saw
        agree = sum(_tag_agrees(r) for r in fresh)
        checks.append(
            Check(
                "mapping",
                "the rater's record of the winning position matches every answer",
                agree,
                agree == len(fresh),
            )
        )
    return checks


def _tag_agrees(result: ComparisonResult) -> bool:
    tag = _MOCK_TAG.match(result.justification)
    return tag is not None and (tag.group(1) == "first") == presented_first_won(result)
