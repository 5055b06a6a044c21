"""Server-side essay order: which requests are swapped, and answers mapped back."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common_core.enums import EssayWinner, LLMProviderType, PresentationOrder
from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.essay_order import (
    Counterbalancer,
    choose_presentation,
    in_caller_terms,
    swap_labels,
)
from services.llm_provider_service.metrics import ServiceMetrics
from services.llm_provider_service.models import PositionCounts
from services.llm_provider_service.position_bias.memory import InMemoryPositionBiasStore
from services.llm_provider_service.position_bias.stats import binomial_two_sided_p
from tests.factories import make_job, make_request
from tests.fakes import judgement

KEY = b"an essay order key of 32 bytes!!"
SWAPPED, AS_SENT = PresentationOrder.SWAPPED, PresentationOrder.AS_SENT


def test_the_order_depends_on_the_request_id_and_key_alone() -> None:
    request = make_request()
    ids = [uuid.uuid4() for _ in range(64)]
    first = [choose_presentation(request, i, KEY) for i in ids]
    # Same id, same key: same order, whatever else the request says.
    other = make_request(user_prompt="Another task entirely", metadata={"x": 1})
    assert [choose_presentation(other, i, KEY) for i in ids] == first
    assert {randomized for _, randomized in first} == {True}
    assert {order for order, _ in first} == {SWAPPED, AS_SENT}
    # Another key reorders (the chance that 64 bits all agree is 2**-64).
    assert [choose_presentation(request, i, b"x" * 32) for i in ids] != first


def test_about_half_of_the_requests_are_swapped() -> None:
    request = make_request()
    n = 4000
    swapped = sum(choose_presentation(request, uuid.uuid4(), KEY)[0] is SWAPPED for _ in range(n))
    assert binomial_two_sided_p(swapped, n) > 1e-4, swapped


@pytest.mark.parametrize(
    "fields",
    [
        {"essay_order": "as_sent"},
        {"essay_b": None},
        {"essay_a": None, "user_prompt": "Judge the essay below."},
    ],
    ids=["as_sent", "no_essay_b", "no_essay_a"],
)
def test_as_sent_or_a_missing_essay_is_never_randomized(fields: dict[str, object]) -> None:
    request = make_request(**fields)
    for _ in range(64):
        assert choose_presentation(request, uuid.uuid4(), KEY) == (AS_SENT, False)


@pytest.mark.parametrize(
    ("text", "swapped"),
    [
        ("Essay A is better than Essay B.", "Essay B is better than Essay A."),
        ("essay B's thesis beats ESSAY A", "essay A's thesis beats ESSAY B"),
        ("Essays A and B; Essay AB; EssayA", "Essays A and B; Essay AB; EssayA"),
        ("The first essay wins.", "The first essay wins."),
    ],
)
def test_swap_labels_trades_only_the_essay_labels(text: str, swapped: str) -> None:
    assert swap_labels(text) == swapped


PIECES = st.sampled_from(["Essay A", "Essay B", "ESSAY ", "essay", "A", "B", "'s", " ", "x"])


@given(st.lists(PIECES).map("".join))
def test_swapping_labels_twice_gives_the_text_back(text: str) -> None:
    assert swap_labels(swap_labels(text)) == text
    assert len(swap_labels(text)) == len(text)


def test_an_answer_to_a_swapped_presentation_is_mapped_back() -> None:
    answer = judgement(EssayWinner.ESSAY_A, justification="Essay A is clearer than Essay B.")
    assert in_caller_terms(answer, AS_SENT) == answer
    back = in_caller_terms(answer, SWAPPED)
    assert back.winner is EssayWinner.ESSAY_B
    assert back.justification == "Essay B is clearer than Essay A."
    assert (
        back.model_copy(update={"winner": answer.winner, "justification": answer.justification})
        == answer
    )


class FailingStore(InMemoryPositionBiasStore):
    async def record(self, provider: LLMProviderType, model: str, *, first_won: bool) -> None:
        raise QueueUnavailableError("the store is down")


async def test_only_randomized_judgements_are_counted_by_presented_position() -> None:
    store, metrics = InMemoryPositionBiasStore(), ServiceMetrics()
    balancer = Counterbalancer(KEY, store, metrics)
    randomized = make_job(presentation_order=SWAPPED, order_randomized=True)
    await balancer.observe(randomized, judgement(EssayWinner.ESSAY_A, model="m"))
    await balancer.observe(randomized, judgement(EssayWinner.ESSAY_B, model="m"))
    await balancer.observe(randomized, judgement(EssayWinner.ESSAY_A, model="m"))
    await balancer.observe(make_job(), judgement(EssayWinner.ESSAY_A, model="m"))  # as sent

    assert await store.counts() == [PositionCounts(LLMProviderType.MOCK, "m", 3, 2)]
    sample = metrics.registry.get_sample_value
    labels = {"provider": "mock", "model": "m"}
    assert sample("llm_provider_winner_position_total", {**labels, "position": "first"}) == 2
    assert sample("llm_provider_winner_position_total", {**labels, "position": "second"}) == 1
    assert sample("llm_provider_presentation_order_total", {"order": "swapped"}) == 3


async def test_a_store_outage_costs_the_report_a_count_never_the_answer() -> None:
    metrics = ServiceMetrics()
    balancer = Counterbalancer(KEY, FailingStore(), metrics)
    job = make_job(order_randomized=True)
    await balancer.observe(job, judgement())
    await balancer.observe(job, judgement())
    assert metrics.registry.get_sample_value("llm_provider_position_bias_unrecorded_total") == 2


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Counterbalancer(b"short", InMemoryPositionBiasStore(), ServiceMetrics())


def test_two_marked_essay_blocks_are_randomized_like_two_essays() -> None:
    marked = [
        {"target": "user_content", "content": "AAA", "essay": "a"},
        {"target": "user_content", "content": "BBB", "essay": "b"},
    ]
    request = make_request(essay_a=None, essay_b=None, prompt_blocks=marked)
    only_a = make_request(essay_a=None, essay_b=None, prompt_blocks=marked[:1])
    orders = {choose_presentation(request, uuid.uuid4(), KEY) for _ in range(64)}
    assert orders == {(SWAPPED, True), (AS_SENT, True)}
    assert choose_presentation(only_a, uuid.uuid4(), KEY) == (AS_SENT, False)
