"""Fixtures of the Gemini batch tests: settings aimed at the fake upstream, the adapter as
`BATCH_BUILDERS` builds it (`api`), and the fake's Gemini batch jobs (`jobs`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from services.llm_provider_service.protocols import BatchAPI
from services.llm_provider_service.providers.batch_clients import BATCH_BUILDERS
from services.llm_provider_service.settings import Settings
from tests.integration.providers.batch.gemini.gemini_support import GOOGLE, MODEL
from tests.support.fake_vendors import FakeUpstream
from tests.support.fake_vendors.gemini_batch_wire import GeminiBatches


@pytest.fixture
def settings(fake: FakeUpstream, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        google_api_key="test-key",
        google_base_url=fake.google_base_url,
        google_timeout_seconds=5.0,
        google_default_model=MODEL,
        batch_flex_timeout_seconds=42.0,
    )


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[BatchAPI]:
    built, close = BATCH_BUILDERS[GOOGLE](settings.provider_settings(GOOGLE), settings)
    yield built
    await close()


@pytest.fixture
def jobs(fake: FakeUpstream) -> GeminiBatches:
    return fake.gemini_batches
