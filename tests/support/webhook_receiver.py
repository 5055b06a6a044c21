"""The webhook receiver (`devtools.webhook_receiver`) and its `webhook_receiver` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devtools.webhook_receiver import ReceivedRequest, Reply, WebhookReceiver

__all__ = ["ReceivedRequest", "Reply", "WebhookReceiver", "webhook_receiver_fixture"]


@pytest.fixture(name="webhook_receiver")
async def webhook_receiver_fixture() -> AsyncIterator[WebhookReceiver]:
    """`webhook_receiver`: a running receiver for one test (import this to use it)."""
    async with WebhookReceiver() as receiver:
        yield receiver
