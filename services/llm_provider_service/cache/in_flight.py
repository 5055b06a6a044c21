"""`InFlightCalls`: identical calls running at the same moment share one provider call.

Used only for requests with `cache_mode=deduplication_only`. Nothing is kept once the call
ends, so a later identical request is a fresh judgement: this is not a cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class InFlightCalls(Generic[T]):
    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future[T]] = {}

    async def share(self, key: str, call: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """The answer of the call running under `key`, joining it if one runs (shared
        True), else of `call()`. A failure reaches every caller that shared the call."""
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running), True
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            judgement = await call()
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # marked retrieved: a call nobody joined logs nothing
            else:
                future.cancel()
            raise
        finally:
            del self._running[key]
        future.set_result(judgement)
        return judgement, False
