"""The four vendors' Batch API fakes behind one door of `FakeUpstream`.

Each fake keeps its own batches, moved only when a test says so (see each module's
docstring): `anthropic_batch_wire.py`, `openai_batch_wire.py`, `openrouter_batch_wire.py`,
`gemini_batch_wire.py`. `FakeUpstream` asks `serve` first; `NOT_BATCH` sends the request on
to the realtime endpoints.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from tests.support.fake_vendors.anthropic_batch_wire import AnthropicBatches
from tests.support.fake_vendors.asgi import Hang
from tests.support.fake_vendors.gemini_batch_wire import GeminiBatches
from tests.support.fake_vendors.openai_batch_wire import OpenAIBatchFake
from tests.support.fake_vendors.openrouter_batch_wire import OpenRouterBatchFake
from tests.support.fake_vendors.wire import Answers, Reply

NOT_BATCH: Final = object()
"""`BatchFakes.serve`'s answer for a request that is for no Batch API."""


class BatchFakes:
    """Every vendor's Batch API fake, sharing the upstream's answers and lock."""

    def __init__(self, answers: Answers, lock: threading.RLock) -> None:
        self.anthropic = AnthropicBatches(answers, lock)  # Message Batches
        self.openai = OpenAIBatchFake(answers, lock)  # files + batches
        self.openrouter = OpenRouterBatchFake(answers, lock)
        self.gemini = GeminiBatches(answers, lock)  # batch jobs

    def reset(self) -> None:
        for fake in (self.anthropic, self.openai, self.openrouter, self.gemini):
            fake.reset()

    async def serve(self, scope: dict[str, Any], body: bytes, hang: Hang) -> Reply | object | None:
        """The batch fake's answer (None drops the connection), or `NOT_BATCH`."""
        if self.anthropic.owns(scope):
            return await self.anthropic.handle(scope, body, hang)
        # Gemini's `/v1/batches/<id>` is OpenAI's path too (one host here, two in life): the
        # google-genai SDK's key header tells them apart.
        if self.gemini.owns(scope) and _sent_by_google_genai(scope):
            return await self.gemini.serve(scope, body, hang)
        for fake in (self.openai, self.openrouter):
            if fake.owns(scope["method"], scope["path"]):
                return await fake.serve(scope, body, hang)
        return NOT_BATCH


def _sent_by_google_genai(scope: dict[str, Any]) -> bool:
    return any(name.lower() == b"x-goog-api-key" for name, _ in scope["headers"])
