"""Settling an idempotency key in the background while its store (Redis) cannot be reached."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.llm_provider_service.errors import QueueUnavailableError
from services.llm_provider_service.models import IdempotencyEntry

_RETRY_FIRST_PAUSE_SECONDS = 0.05
_RETRY_MAX_PAUSE_SECONDS = 1.0

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Pending:
    """A key being settled in the background: its task, and the event that cuts its backoff
    short."""

    wake: asyncio.Event
    task: asyncio.Future[None] | None = None


async def retry_settling(
    mine: IdempotencyEntry,
    hold: float,
    step: Callable[[], Awaitable[None]],
    wake: asyncio.Event,
) -> None:
    """Run `step` (settling the key of `mine`) until it succeeds, retrying with a growing
    pause while the store cannot be reached, until the reservation (held `hold` seconds)
    would have lapsed anyway; `wake` cuts a pause short."""
    deadline = time.monotonic() + hold
    pause = _RETRY_FIRST_PAUSE_SECONDS
    while True:
        try:
            await step()
            return
        except QueueUnavailableError:
            if time.monotonic() + pause >= deadline:
                logger.warning(
                    "could not settle the idempotency key of request %s while Redis was "
                    "away; its reservation lapses by itself",
                    mine.request_id,
                )
                return
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), pause)
        pause = min(pause * 2, _RETRY_MAX_PAUSE_SECONDS)
