"""The flex lane's OpenAI adapter, as `FLEX_BUILDERS` builds it: the realtime request with
`service_tier: "flex"`, the flex timeout, and a 429 refusal that is retryable."""

from __future__ import annotations

import pytest

from common_core.api_models import LLMConfigOverrides
from services.llm_provider_service.errors import ProviderTimeoutError, ProviderUnavailableError
from services.llm_provider_service.protocols import LLMProvider
from tests.integration.providers.batch.conftest import OPENAI, entry
from tests.support.fake_vendors import FakeUpstream


async def test_flex_sends_the_realtime_body_with_service_tier_flex(
    openai_flex: LLMProvider, realtime, fake: FakeUpstream
) -> None:
    item = entry(1, LLMConfigOverrides(temperature_override=0.4, model_override="gpt-4o"))
    judgement = await openai_flex.compare(item.prompt, item.overrides)
    flex = fake.last("openai").json
    await realtime[OPENAI].compare(item.prompt, item.overrides)
    standard = fake.last("openai").json

    assert flex["service_tier"] == "flex"
    assert "service_tier" not in standard
    assert {k: v for k, v in flex.items() if k != "service_tier"} == standard
    assert judgement.model == "gpt-4o"


async def test_a_flex_refusal_is_a_retryable_unavailable_error(
    openai_flex: LLMProvider, fake: FakeUpstream
) -> None:
    fake.fail("openai", "rate_limit", times=1)
    item = entry(2)
    with pytest.raises(ProviderUnavailableError) as refused:
        await openai_flex.compare(item.prompt, item.overrides)
    assert refused.value.retryable
    assert refused.value.retry_after == 2.0
    assert len(fake.requests_for("openai")) == 1  # no hidden SDK retry


async def test_flex_calls_wait_the_flex_timeout_not_the_realtime_one(
    openai_flex: LLMProvider, fake: FakeUpstream
) -> None:
    fake.fail("openai", "timeout", times=1)  # the fake holds the answer back
    item = entry(3)
    with pytest.raises(ProviderTimeoutError, match=r"within 0\.5 s"):
        await openai_flex.compare(item.prompt, item.overrides)
