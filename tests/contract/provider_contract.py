"""The `LLMProvider` contract: one behaviour suite that every provider adapter must pass.

A harness module runs it by importing everything from here and defining one fixture,
`provider_under_test`, that yields a `ProviderHarness`: the adapter under test (built as the
service builds it) and the few test-side levers the suite needs (inject a fault, heal, count
the vendor requests, read the model a request asked for). The suite never looks at how an
adapter talks to its vendor; it only checks what the protocol promises
(`services/llm_provider_service/protocols/provider.py`):

- `compare` returns a valid `Judgement` (the judgement schema, a named model, sane usage);
- `model_override` is honoured;
- every call is fresh: identical calls give independent answers;
- vendor failures become the documented `ProviderError` subclasses, retryable for outages and
  timeouts, not retryable for auth failures and answers outside the schema (after the
  configured re-asks), and `compare` raises nothing but `ProviderError`s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import pytest

from common_core.api_models import JUSTIFICATION_MAX_CHARS, LLMConfigOverrides
from common_core.enums import EssayWinner, LLMProviderType
from services.llm_provider_service.errors import (
    InvalidProviderResponseError,
    ProviderAuthError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from services.llm_provider_service.models import ComparisonPrompt, Judgement
from services.llm_provider_service.protocols import LLMProvider

ContractFault = Literal["outage", "timeout", "auth", "schema_violation"]

PROMPT = ComparisonPrompt.plain(
    system_prompt="You are an experienced teacher comparing two student essays.",
    user_prompt=(
        "Which essay is better?\n\nEssay A:\nThe cat sat on the mat, and then it slept.\n\n"
        "Essay B:\nCats are animals. Some cats sit. This one sat somewhere."
    ),
)
NO_OVERRIDES = LLMConfigOverrides()
OVERRIDE_MODEL = "contract-override-model"
REPEATS = 10


@dataclass(frozen=True)
class ProviderHarness:
    """The adapter under test and the levers the contract pulls.

    - `inject(fault)`: make every following call fail as `fault` until `heal()`;
    - `inject_raw(kind)`: the same for one of the harness's own fault kinds (`raw_faults`);
    - `calls()`: vendor requests made so far, or None when there is no vendor to count;
    - `requested_model()`: the model the newest vendor request asked for, or None;
    - `reasks`: how many times the adapter re-asks an answer outside the schema.
    """

    provider: LLMProvider
    expected: LLMProviderType
    default_model: str
    inject: Callable[[ContractFault], None]
    inject_raw: Callable[[str], None]
    raw_faults: Sequence[str]
    heal: Callable[[], None]
    calls: Callable[[], int | None]
    requested_model: Callable[[], str | None]
    reasks: int


def assert_valid_judgement(judgement: Judgement, *, model: str) -> None:
    assert isinstance(judgement, Judgement)
    assert judgement.winner in (EssayWinner.ESSAY_A, EssayWinner.ESSAY_B)
    assert 1 <= judgement.confidence <= 5
    assert isinstance(judgement.justification, str)
    assert len(judgement.justification) <= JUSTIFICATION_MAX_CHARS
    assert judgement.model == model
    usage = judgement.token_usage
    assert usage.prompt_tokens >= 0
    assert usage.completion_tokens >= 0
    assert usage.cached_prompt_tokens >= 0
    assert usage.cached_prompt_tokens <= usage.prompt_tokens
    assert usage.total_tokens >= usage.prompt_tokens + usage.completion_tokens
    assert judgement.provider_request_id


# ---- answers ----------------------------------------------------------------------------------


async def test_identifies_its_provider_and_default_model(
    provider_under_test: ProviderHarness,
) -> None:
    assert provider_under_test.provider.provider is provider_under_test.expected
    assert provider_under_test.provider.default_model == provider_under_test.default_model


async def test_compare_returns_a_valid_judgement_from_one_call(
    provider_under_test: ProviderHarness,
) -> None:
    judgement = await provider_under_test.provider.compare(PROMPT, NO_OVERRIDES)

    assert_valid_judgement(judgement, model=provider_under_test.default_model)
    assert provider_under_test.calls() in (None, 1)
    assert provider_under_test.requested_model() in (None, provider_under_test.default_model)


async def test_model_override_is_honoured(provider_under_test: ProviderHarness) -> None:
    overrides = LLMConfigOverrides(model_override=OVERRIDE_MODEL)

    judgement = await provider_under_test.provider.compare(PROMPT, overrides)

    assert_valid_judgement(judgement, model=OVERRIDE_MODEL)
    assert provider_under_test.requested_model() in (None, OVERRIDE_MODEL)


async def test_repeated_identical_calls_are_independent(
    provider_under_test: ProviderHarness,
) -> None:
    answers = [
        await provider_under_test.provider.compare(PROMPT, NO_OVERRIDES) for _ in range(REPEATS)
    ]

    for judgement in answers:
        assert_valid_judgement(judgement, model=provider_under_test.default_model)
    distinct = {(j.winner, j.confidence, j.justification) for j in answers}
    assert len(distinct) > 1, "identical calls gave one identical answer: a stored answer?"
    assert len({j.provider_request_id for j in answers}) == REPEATS
    assert provider_under_test.calls() in (None, REPEATS)  # one fresh vendor call each


# ---- failures ---------------------------------------------------------------------------------


async def test_an_outage_is_a_retryable_unavailable_error(
    provider_under_test: ProviderHarness,
) -> None:
    provider_under_test.inject("outage")

    with pytest.raises(ProviderUnavailableError) as caught:
        await provider_under_test.provider.compare(PROMPT, NO_OVERRIDES)

    assert caught.value.retryable is True
    assert caught.value.provider is provider_under_test.expected
    assert provider_under_test.calls() in (None, 1)  # no hidden retries


async def test_a_timeout_is_a_retryable_timeout_error(
    provider_under_test: ProviderHarness,
) -> None:
    provider_under_test.inject("timeout")

    with pytest.raises(ProviderTimeoutError) as caught:
        await provider_under_test.provider.compare(PROMPT, NO_OVERRIDES)

    assert caught.value.retryable is True
    assert caught.value.provider is provider_under_test.expected
    assert provider_under_test.calls() in (None, 1)


async def test_an_auth_failure_is_not_retryable(provider_under_test: ProviderHarness) -> None:
    provider_under_test.inject("auth")

    with pytest.raises(ProviderAuthError) as caught:
        await provider_under_test.provider.compare(PROMPT, NO_OVERRIDES)

    assert caught.value.retryable is False
    assert caught.value.provider is provider_under_test.expected
    assert provider_under_test.calls() in (None, 1)


async def test_an_answer_outside_the_schema_is_invalid_after_the_reasks(
    provider_under_test: ProviderHarness,
) -> None:
    provider_under_test.inject("schema_violation")

    with pytest.raises(InvalidProviderResponseError) as caught:
        await provider_under_test.provider.compare(PROMPT, NO_OVERRIDES)

    assert caught.value.retryable is False
    assert caught.value.provider is provider_under_test.expected
    assert provider_under_test.calls() in (None, 1 + provider_under_test.reasks)


async def test_compare_raises_only_provider_errors(provider_under_test: ProviderHarness) -> None:
    outcomes: dict[str, str] = {}
    for kind in provider_under_test.raw_faults:
        provider_under_test.inject_raw(kind)
        try:
            await provider_under_test.provider.compare(PROMPT, NO_OVERRIDES)
        except ProviderError as exc:
            outcomes[kind] = type(exc).__name__
        except Exception as exc:  # the contract violation this test exists to catch
            pytest.fail(f"fault {kind!r} escaped as {type(exc).__name__}: {exc}")
        else:
            pytest.fail(f"fault {kind!r} produced a judgement")
        finally:
            provider_under_test.heal()
    assert set(outcomes) == set(provider_under_test.raw_faults)


async def test_a_healed_provider_answers_again(provider_under_test: ProviderHarness) -> None:
    provider_under_test.inject("outage")
    with pytest.raises(ProviderUnavailableError):
        await provider_under_test.provider.compare(PROMPT, NO_OVERRIDES)

    provider_under_test.heal()
    judgement = await provider_under_test.provider.compare(PROMPT, NO_OVERRIDES)

    assert_valid_judgement(judgement, model=provider_under_test.default_model)
