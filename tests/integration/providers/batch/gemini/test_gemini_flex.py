"""The Gemini flex lane as `FLEX_BUILDERS` builds it: the realtime adapter asking for
`service_tier: flex` with the flex timeout, with the real google-genai SDK over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from common_core.api_models import LLMConfigOverrides
from common_core.enums import LLMProviderType
from services.llm_provider_service.errors import ProviderUnavailableError
from services.llm_provider_service.models import ComparisonPrompt
from services.llm_provider_service.protocols import LLMProvider
from services.llm_provider_service.providers.batch_clients import FLEX_BUILDERS
from services.llm_provider_service.providers.vendor_clients import VENDOR_BUILDERS
from services.llm_provider_service.settings import Settings
from tests.support.fake_vendors import FakeUpstream

GOOGLE = LLMProviderType.GOOGLE
PROMPT = ComparisonPrompt.plain(
    system_prompt="You are an experienced teacher.", user_prompt="Which essay is better?"
)


@pytest.fixture
def settings(fake: FakeUpstream, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        google_api_key="test-key",
        google_base_url=fake.google_base_url,
        google_timeout_seconds=5.0,
        batch_flex_timeout_seconds=42.0,
    )


@pytest.fixture
async def flex(settings: Settings) -> AsyncIterator[LLMProvider]:
    adapter, close = FLEX_BUILDERS[GOOGLE](settings.provider_settings(GOOGLE), settings)
    yield adapter
    await close()


async def test_a_flex_call_asks_for_the_flex_tier_with_the_flex_timeout(
    fake: FakeUpstream, flex: LLMProvider
) -> None:
    judgement = await flex.compare(PROMPT, LLMConfigOverrides())

    sent = fake.last("google")
    assert sent.json["serviceTier"] == "flex"
    assert sent.headers["x-server-timeout"] == "42"
    assert judgement.provider_request_id


async def test_the_realtime_call_asks_for_no_tier(fake: FakeUpstream, settings: Settings) -> None:
    realtime, close = VENDOR_BUILDERS[GOOGLE](settings.provider_settings(GOOGLE), settings)
    try:
        await realtime.compare(PROMPT, LLMConfigOverrides())
    finally:
        await close()
    sent = fake.last("google")
    assert "serviceTier" not in sent.json
    assert sent.headers["x-server-timeout"] == "5"


async def test_a_flex_refusal_is_retryable(fake: FakeUpstream, flex: LLMProvider) -> None:
    fake.fail("google", "rate_limit", times=1)  # with the fake's Retry-After, 2 s

    with pytest.raises(ProviderUnavailableError) as refused:
        await flex.compare(PROMPT, LLMConfigOverrides())

    assert refused.value.retryable
    assert refused.value.status == 429
    assert refused.value.retry_after == 2.0
    assert len(fake.requests_for("google")) == 1


@pytest.mark.parametrize(("tier", "status"), [("flex", 200), ("economy", 400)])
async def test_the_fake_takes_the_known_tiers(fake: FakeUpstream, tier: str, status: int) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "serviceTier": tier}
    url = f"{fake.google_base_url}/v1beta/models/gemini-2.5-flash:generateContent"
    async with httpx.AsyncClient() as client:
        response = await client.post(url, json=body)
    assert response.status_code == status
