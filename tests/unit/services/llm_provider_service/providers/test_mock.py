"""Behaviour of the mock provider: a varied, reproducible, prompt-blind rater with faults."""

from __future__ import annotations

import logging
import math
import random
import re
from collections import Counter

import pytest

from common_core.api_models import JUSTIFICATION_MAX_CHARS, LLMConfigOverrides
from common_core.enums import EssayWinner, LLMProviderType, ReasoningEffort
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from services.llm_provider_service.models import ComparisonPrompt, Judgement
from services.llm_provider_service.protocols import LLMProvider
from services.llm_provider_service.providers.mock import MockProvider
from services.llm_provider_service.settings import MockErrorKind, MockSettings, Settings

NO_OVERRIDES = LLMConfigOverrides()
PROMPT = ComparisonPrompt.plain(
    system_prompt="You are an experienced examiner. Answer in JSON.",
    user_prompt="Which essay is better?\n\nEssay A:\nCats are good.\n\nEssay B:\nDogs are good.",
)
OTHER_PROMPT = ComparisonPrompt.plain(
    system_prompt="Judge strictly.",
    user_prompt="Compare these.\n\nEssay A:\n" + "Long text. " * 300 + "\n\nEssay B:\nShort.",
)
BASE_CONFIG = MockSettings(
    default_model="mock-rater-1",
    win_probability_a=0.5,
    confidence_weights=(1.0, 2.0, 4.0, 3.0, 1.0),
    latency_ms=20.0,
    latency_jitter_ms=10.0,
    error_rate=0.0,
    error_kind="server_error",
)


class RecordingSleep:
    """A sleep that returns at once and remembers every delay it was asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def make_provider(
    sleep: RecordingSleep | None = None, *, seed: int = 1234, **changes: object
) -> MockProvider:
    config = BASE_CONFIG.model_copy(update=changes)
    return MockProvider(config, random.Random(seed), sleep=sleep or RecordingSleep())


async def judge_many(
    provider: MockProvider,
    n: int,
    prompt: ComparisonPrompt = PROMPT,
    overrides: LLMConfigOverrides = NO_OVERRIDES,
) -> list[Judgement]:
    return [await provider.compare(prompt, overrides) for _ in range(n)]


def assert_share_near(count: int, n: int, p: float) -> None:
    """`count` successes in `n` trials is within 5 binomial standard deviations of `p`."""
    sigma = math.sqrt(n * p * (1.0 - p))
    assert abs(count - n * p) <= 5.0 * sigma, f"{count}/{n} is far from p={p}"


def test_satisfies_the_provider_protocol() -> None:
    provider: LLMProvider = make_provider()  # mypy checks the structural match

    assert provider.provider is LLMProviderType.MOCK
    assert provider.default_model == "mock-rater-1"


async def test_identical_prompts_get_varied_answers() -> None:
    judgements = await judge_many(make_provider(), 200)

    winners = Counter(j.winner for j in judgements)
    assert set(winners) == {EssayWinner.ESSAY_A, EssayWinner.ESSAY_B}
    assert_share_near(winners[EssayWinner.ESSAY_A], 200, 0.5)
    assert len({j.confidence for j in judgements}) >= 3
    assert len({j.justification for j in judgements}) >= 100
    assert len({j.provider_request_id for j in judgements}) == 200


@pytest.mark.parametrize("p_a", [0.2, 0.7])
async def test_winner_share_follows_win_probability(p_a: float) -> None:
    judgements = await judge_many(make_provider(win_probability_a=p_a), 400)

    wins_a = sum(j.winner is EssayWinner.ESSAY_A for j in judgements)
    assert_share_near(wins_a, 400, p_a)


@pytest.mark.parametrize(
    ("p_a", "always"), [(1.0, EssayWinner.ESSAY_A), (0.0, EssayWinner.ESSAY_B)]
)
async def test_extreme_win_probability_always_picks_one_side(
    p_a: float, always: EssayWinner
) -> None:
    judgements = await judge_many(make_provider(win_probability_a=p_a), 150)

    assert {j.winner for j in judgements} == {always}


async def test_same_seed_replays_the_run_and_another_seed_does_not() -> None:
    first = await judge_many(make_provider(seed=42), 30)
    replay = await judge_many(make_provider(seed=42), 30)
    other = await judge_many(make_provider(seed=43), 30)

    assert first == replay
    assert [j.winner for j in first] != [j.winner for j in other]
    assert [j.justification for j in first] != [j.justification for j in other]


async def test_answer_does_not_depend_on_the_prompt_text() -> None:
    on_prompt = await judge_many(make_provider(seed=7), 50, prompt=PROMPT)
    on_other = await judge_many(make_provider(seed=7), 50, prompt=OTHER_PROMPT)

    def verdicts(judgements: list[Judgement]) -> list[tuple[EssayWinner, int, str]]:
        return [(j.winner, j.confidence, j.justification) for j in judgements]

    # Same rng state, different prompts: the same answers, so nothing is hashed from the text.
    assert verdicts(on_prompt) == verdicts(on_other)
    assert on_prompt[0].token_usage.prompt_tokens < on_other[0].token_usage.prompt_tokens
    # Same prompt, different rng states: different answers.
    elsewhere = await judge_many(make_provider(seed=8), 50, prompt=PROMPT)
    assert [j.winner for j in on_prompt] != [j.winner for j in elsewhere]


async def test_confidence_follows_weights_and_never_draws_a_zero_weight() -> None:
    provider = make_provider(confidence_weights=(0.0, 1.0, 0.0, 3.0, 0.0))

    counts = Counter(j.confidence for j in await judge_many(provider, 800))

    assert set(counts) == {2, 4}
    assert_share_near(counts[4], 800, 0.75)


async def test_temperature_zero_gives_the_modal_confidence_but_still_a_random_winner() -> None:
    overrides = LLMConfigOverrides(temperature_override=0.0)

    judgements = await judge_many(make_provider(), 200, overrides=overrides)

    assert {j.confidence for j in judgements} == {3}  # the mode of (1, 2, 4, 3, 1)
    assert_share_near(sum(j.winner is EssayWinner.ESSAY_A for j in judgements), 200, 0.5)


@pytest.mark.parametrize(
    ("temperature", "expected_mode_share"),
    [
        (None, 4 / 11),
        (1.0, 4 / 11),
        (0.5, 16 / 31),
        (2.0, 2 / (2 + 2 + math.sqrt(2) + math.sqrt(3))),
    ],
)
async def test_temperature_reshapes_the_confidence_distribution(
    temperature: float | None, expected_mode_share: float
) -> None:
    overrides = LLMConfigOverrides(temperature_override=temperature)
    provider = make_provider(confidence_weights=(1.0, 2.0, 4.0, 3.0, 1.0))

    counts = Counter(j.confidence for j in await judge_many(provider, 1500, overrides=overrides))

    assert_share_near(counts[3], 1500, expected_mode_share)


async def test_temperature_zero_shares_between_tied_modes() -> None:
    overrides = LLMConfigOverrides(temperature_override=0.0)
    provider = make_provider(confidence_weights=(1.0, 3.0, 0.0, 3.0, 1.0))

    counts = Counter(j.confidence for j in await judge_many(provider, 400, overrides=overrides))

    assert set(counts) == {2, 4}
    assert_share_near(counts[2], 400, 0.5)


async def test_zero_weight_stays_impossible_at_high_temperature() -> None:
    overrides = LLMConfigOverrides(temperature_override=2.0)
    provider = make_provider(confidence_weights=(0.0, 1.0, 5.0, 1.0, 0.0))

    counts = Counter(j.confidence for j in await judge_many(provider, 500, overrides=overrides))

    assert set(counts) == {2, 3, 4}


async def test_justification_is_short_and_names_the_winner() -> None:
    judgements = await judge_many(make_provider(), 300)

    for judgement in judgements:
        assert 0 < len(judgement.justification) <= JUSTIFICATION_MAX_CHARS
        first_sentence = judgement.justification.split(".")[0]
        assert judgement.winner.value in first_sentence


async def test_latency_is_jittered_around_the_setting(sleep: RecordingSleep) -> None:
    provider = make_provider(sleep, latency_ms=20.0, latency_jitter_ms=10.0)

    await judge_many(provider, 200)

    assert len(sleep.delays) == 200
    assert all(0.010 <= d <= 0.030 for d in sleep.delays)
    assert len(set(sleep.delays)) > 150
    assert min(sleep.delays) < 0.013
    assert max(sleep.delays) > 0.027


async def test_latency_is_never_negative(sleep: RecordingSleep) -> None:
    provider = make_provider(sleep, latency_ms=5.0, latency_jitter_ms=50.0)

    await judge_many(provider, 200)

    assert all(0.0 <= d <= 0.055 for d in sleep.delays)
    assert 0.0 in sleep.delays  # a jitter larger than the latency is clamped, not negative


async def test_zero_latency_and_jitter_sleep_zero(sleep: RecordingSleep) -> None:
    await judge_many(make_provider(sleep, latency_ms=0.0, latency_jitter_ms=0.0), 5)

    assert sleep.delays == [0.0] * 5


@pytest.mark.parametrize(
    ("kind", "error_class", "retryable", "status", "reason"),
    [
        ("server_error", ProviderUnavailableError, True, 503, "server_error"),
        ("rate_limit", ProviderUnavailableError, True, 429, "rate_limited"),
        ("timeout", ProviderTimeoutError, True, None, None),
        ("connection", ProviderUnavailableError, True, None, "connection_error"),
        ("auth", ProviderAuthError, False, 401, None),
        ("bad_request", ProviderBadRequestError, False, 400, None),
        ("invalid_response", InvalidProviderResponseError, False, None, None),
    ],
)
async def test_each_error_kind_raises_its_provider_error(
    sleep: RecordingSleep,
    kind: MockErrorKind,
    error_class: type[ProviderError],
    retryable: bool,
    status: int | None,
    reason: str | None,
) -> None:
    provider = make_provider(sleep, error_rate=1.0, error_kind=kind)

    with pytest.raises(error_class) as caught:
        await provider.compare(PROMPT, NO_OVERRIDES)

    error = caught.value
    assert type(error) is error_class
    assert error.retryable is retryable
    assert error.provider is LLMProviderType.MOCK
    assert error.status == status
    assert getattr(error, "reason", None) == reason
    if kind == "rate_limit":
        assert error.retry_after is not None
        assert error.retry_after > 0
    assert len(sleep.delays) == 1  # a failing call still takes time, as a real one does


async def test_error_rate_zero_never_fails() -> None:
    judgements = await judge_many(make_provider(error_rate=0.0, error_kind="timeout"), 300)

    assert len(judgements) == 300


async def test_error_rate_one_always_fails() -> None:
    provider = make_provider(error_rate=1.0, error_kind="timeout")

    for _ in range(100):
        with pytest.raises(ProviderTimeoutError):
            await provider.compare(PROMPT, NO_OVERRIDES)


async def test_partial_error_rate_fails_at_about_that_rate() -> None:
    provider = make_provider(error_rate=0.3, error_kind="connection")
    failures = 0

    for _ in range(500):
        try:
            await provider.compare(PROMPT, NO_OVERRIDES)
        except ProviderUnavailableError:
            failures += 1

    assert_share_near(failures, 500, 0.3)


async def test_set_fault_changes_later_calls() -> None:
    provider = make_provider()
    await provider.compare(PROMPT, NO_OVERRIDES)

    provider.set_fault(1.0, "auth")

    assert (provider.error_rate, provider.error_kind) == (1.0, "auth")
    with pytest.raises(ProviderAuthError):
        await provider.compare(PROMPT, NO_OVERRIDES)
    provider.set_fault(0.0, "auth")
    assert (await provider.compare(PROMPT, NO_OVERRIDES)).confidence in range(1, 6)


@pytest.mark.parametrize(
    ("rate", "kind"),
    [(-0.1, "timeout"), (1.01, "timeout"), (math.nan, "timeout"), (0.5, "teapot")],
)
def test_set_fault_refuses_bad_values_and_keeps_the_old_ones(rate: float, kind: str) -> None:
    provider = make_provider(error_rate=0.25, error_kind="connection")

    with pytest.raises(ValueError, match="error_"):
        provider.set_fault(rate, kind)  # type: ignore[arg-type]

    assert (provider.error_rate, provider.error_kind) == (0.25, "connection")


@pytest.mark.parametrize(
    "changes",
    [
        {"default_model": ""},
        {"win_probability_a": 1.5},
        {"win_probability_a": -0.1},
        {"confidence_weights": (0.0, 0.0, 0.0, 0.0, 0.0)},
        {"confidence_weights": (1.0, -1.0, 1.0, 1.0, 1.0)},
        {"confidence_weights": (1.0, 1.0, 1.0)},
        {"confidence_weights": (1.0, math.inf, 1.0, 1.0, 1.0)},
        {"latency_ms": -1.0},
        {"latency_jitter_ms": math.nan},
        {"error_rate": 2.0},
        {"error_kind": "teapot"},
    ],
)
def test_the_provider_refuses_values_out_of_range(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"must|needs"):
        MockProvider(BASE_CONFIG.model_copy(update=changes), random.Random(1))


def test_the_mock_takes_its_section_of_the_settings() -> None:
    settings = Settings(
        mock_default_model="mock-x",
        mock_win_probability_a=0.6,
        mock_confidence_weights=(0.0, 1.0, 2.0, 1.0, 0.0),
        mock_latency_ms=5.0,
        mock_latency_jitter_ms=1.0,
        mock_error_rate=0.1,
        mock_error_kind="rate_limit",
    )

    assert settings.mock == MockSettings(
        default_model="mock-x",
        win_probability_a=0.6,
        confidence_weights=(0.0, 1.0, 2.0, 1.0, 0.0),
        latency_ms=5.0,
        latency_jitter_ms=1.0,
        error_rate=0.1,
        error_kind="rate_limit",
    )


async def test_model_override_replaces_the_default_model() -> None:
    provider = make_provider()

    default = await provider.compare(PROMPT, NO_OVERRIDES)
    overridden = await provider.compare(PROMPT, LLMConfigOverrides(model_override="mock-big"))

    assert default.model == "mock-rater-1"
    assert overridden.model == "mock-big"


async def test_max_tokens_override_caps_completion_and_justification() -> None:
    uncapped = await judge_many(make_provider(seed=5), 200)
    capped = await judge_many(
        make_provider(seed=5), 200, overrides=LLMConfigOverrides(max_tokens_override=40)
    )

    assert max(j.token_usage.completion_tokens for j in uncapped) > 40  # the cap has to bite
    for judgement in capped:
        assert judgement.token_usage.completion_tokens <= 40
        assert len(judgement.justification) <= (40 - 16) * 4
        assert judgement.winner.value in judgement.justification
        assert judgement.justification.endswith(".")  # whole sentences, not a cut-off one


async def test_max_tokens_too_small_for_an_answer_is_an_invalid_response() -> None:
    provider = make_provider()

    with pytest.raises(InvalidProviderResponseError) as caught:
        await provider.compare(PROMPT, LLMConfigOverrides(max_tokens_override=5))

    assert caught.value.retryable is False


async def test_token_usage_is_plausible() -> None:
    prompt_chars = len(PROMPT.system_prompt) + len(PROMPT.user_prompt)

    for judgement in await judge_many(make_provider(), 50):
        usage = judgement.token_usage
        assert abs(usage.prompt_tokens - prompt_chars / 4) <= 1
        assert usage.completion_tokens >= math.ceil(len(judgement.justification) / 4)
        assert usage.completion_tokens <= len(judgement.justification) / 4 + 20
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_provider_request_id_looks_like_a_vendor_id() -> None:
    judgement = await make_provider().compare(PROMPT, NO_OVERRIDES)

    assert judgement.provider_request_id is not None
    assert re.fullmatch(r"mock-[0-9a-f]{32}", judgement.provider_request_id)


async def test_unused_overrides_are_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    overrides = LLMConfigOverrides(reasoning_effort=ReasoningEffort.HIGH)

    with caplog.at_level(logging.DEBUG, logger="services.llm_provider_service.providers.mock"):
        judgement = await make_provider(seed=3).compare(PROMPT, overrides)

    assert judgement == await make_provider(seed=3).compare(PROMPT, NO_OVERRIDES)
    assert any("reasoning_effort" in record.getMessage() for record in caplog.records)
