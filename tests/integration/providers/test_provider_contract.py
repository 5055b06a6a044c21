"""The `LLMProvider` contract run against every provider the service can build.

The mock is built as `DevelopmentDeps` builds it (seeded rng, here with zero latency); each
vendor adapter as `VendorDeps` builds it, by calling `VENDOR_BUILDERS[provider]` with settings
that point its real SDK client at the fake upstream over real HTTP, and closed with the close
function the builder returned.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from typing import Any, get_args

import pytest

import tests.contract.provider_contract as contract
from common_core.enums import LLMProviderType
from services.llm_provider_service.providers.mock import MockProvider
from services.llm_provider_service.providers.vendor_clients import VENDOR_BUILDERS
from services.llm_provider_service.settings import MockErrorKind, Settings

# A star import, as the queue contract does: pytest collects the contract's tests here.
from tests.contract.provider_contract import *  # noqa: F403
from tests.contract.provider_contract import ContractFault, ProviderHarness
from tests.support.fake_vendors import (
    FAULT_KINDS,
    FakeUpstream,
)

TIMEOUT_SECONDS = 0.5
# The service's default "claude-sonnet-4-5" is on the anthropic SDK's deprecation list, and
# its DeprecationWarning is an error under this suite's `filterwarnings = error`.
ANTHROPIC_MODEL = "claude-haiku-4-5"
REASKS = 1
VENDOR_FAULTS: dict[ContractFault, str] = {
    "outage": "unavailable",
    "timeout": "timeout",
    "auth": "auth",
    "schema_violation": "schema_violation",
}
MOCK_FAULTS: dict[ContractFault, MockErrorKind] = {
    "outage": "server_error",
    "timeout": "timeout",
    "auth": "auth",
    "schema_violation": "invalid_response",
}
BASE_URLS: dict[LLMProviderType, Callable[[FakeUpstream], str]] = {
    LLMProviderType.ANTHROPIC: lambda fake: fake.anthropic_base_url,
    LLMProviderType.OPENAI: lambda fake: fake.openai_base_url,
    LLMProviderType.OPENROUTER: lambda fake: fake.openrouter_base_url,
    LLMProviderType.GOOGLE: lambda fake: fake.google_base_url,
}


def _mock_harness(settings: Settings) -> ProviderHarness:
    mock = MockProvider(settings.mock, random.Random(settings.mock.seed))

    def inject_raw(kind: str) -> None:
        mock.set_fault(1.0, kind)  # type: ignore[arg-type]  # one of get_args(MockErrorKind)

    return ProviderHarness(
        provider=mock,
        expected=LLMProviderType.MOCK,
        default_model=settings.mock.default_model,
        inject=lambda fault: inject_raw(MOCK_FAULTS[fault]),
        inject_raw=inject_raw,
        raw_faults=get_args(MockErrorKind),
        heal=lambda: mock.set_fault(0.0, "server_error"),
        calls=lambda: None,
        requested_model=lambda: None,
        reasks=REASKS,
    )


@pytest.fixture(params=["mock", "anthropic", "openai", "openrouter", "google"])
async def provider_under_test(
    request: pytest.FixtureRequest,
    clean_fake_upstream: FakeUpstream,
    make_settings: Callable[..., Settings],
) -> AsyncIterator[ProviderHarness]:
    fake = clean_fake_upstream
    provider = LLMProviderType(request.param)
    if provider is LLMProviderType.MOCK:
        yield _mock_harness(make_settings(invalid_response_reasks=REASKS))
        return
    name = provider.value
    values: dict[str, Any] = {
        f"{name}_api_key": "test-key",
        f"{name}_base_url": BASE_URLS[provider](fake),
        f"{name}_timeout_seconds": TIMEOUT_SECONDS,
        "invalid_response_reasks": REASKS,
        "anthropic_default_model": ANTHROPIC_MODEL,
    }
    settings = make_settings(**values)
    config = settings.provider_settings(provider)
    assert config.configured
    assert config.enabled
    adapter, close = VENDOR_BUILDERS[provider](config, settings)
    saved_hang = fake.hang_seconds
    fake.hang_seconds = 5.0  # a `timeout` fault outlasts the client's deadline, not the test

    def requested_model() -> str | None:
        records = fake.requests_for(name)
        return records[-1].model if records else None

    try:
        yield ProviderHarness(
            provider=adapter,
            expected=provider,
            default_model=config.default_model,
            inject=lambda fault: fake.fail(name, VENDOR_FAULTS[fault]),  # type: ignore[arg-type]
            inject_raw=lambda kind: fake.fail(name, kind),  # type: ignore[arg-type]
            # `raw` is set with `fail_with`, and `max_tokens` is the caller's own limit
            # (MaxTokensTooLowError, 422): test_vendor_answers.py pins both.
            raw_faults=tuple(k for k in FAULT_KINDS if k not in ("raw", "max_tokens")),
            heal=fake.heal,
            calls=lambda: len(fake.requests_for(name)),
            requested_model=requested_model,
            reasks=REASKS,
        )
    finally:
        fake.hang_seconds = saved_hang
        await close()


def test_every_contract_test_is_collected_here() -> None:
    contract_tests = {name for name in vars(contract) if name.startswith("test_")}
    assert contract_tests
    assert contract_tests <= set(globals())
