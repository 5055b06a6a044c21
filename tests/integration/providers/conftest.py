"""Fixtures of the provider tests: the session's fake upstream (`fake`, handed to each test
clean); `vendor_adapter`, every vendor adapter on its SDK aimed at it; and `harness`, the
adapter of the test module's `VENDOR`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.providers.vendor_adapters import (
    CASE,
    VendorAdapter,
    vendor_adapter,  # noqa: F401
)
from tests.support.fake_vendors import FakeUpstream, clean_fake_upstream, fake_upstream  # noqa: F401


@pytest.fixture
def fake(clean_fake_upstream: FakeUpstream) -> FakeUpstream:  # noqa: F811
    return clean_fake_upstream


@pytest.fixture
async def harness(
    request: pytest.FixtureRequest, fake: FakeUpstream
) -> AsyncIterator[VendorAdapter]:
    """Builds the adapter of the module's `VENDOR` (`harness.make(**settings)`)."""
    async with VendorAdapter(CASE[request.module.VENDOR], fake) as built:
        yield built
