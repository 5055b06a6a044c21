"""Webhook delivery: one signed POST to one allowed callback URL.

`WebhookSender.send` checks the URL again with the `WebhookPolicy` (`delivery/webhook_policy.py`),
resolves the host once and refuses it when any of its addresses is not public (unless private
addresses are allowed), then POSTs the body signed as `common_core.webhooks` describes, over a
connection pinned to one of the addresses it checked (`delivery/pinned_client.py`). It answers
with a `WebhookOutcome` (delivered, retry later, or rejected for good) and never raises for a
network problem; what to do with a retry is the caller's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self, cast

import httpx

from common_core.webhooks import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, sign
from services.llm_provider_service.delivery.pinned_client import (
    USER_AGENT,
    build_client,
    pinned_to,
)
from services.llm_provider_service.delivery.webhook_policy import WebhookPolicy, WebhookRefused
from services.llm_provider_service.errors import CallbackNotAllowedError
from services.llm_provider_service.providers.http_errors import retry_after_seconds
from services.llm_provider_service.tracing import carrier

MAX_RESPONSE_BYTES: Final = 4096
"""How much of a receiver's answer is read (for the error text); the rest is discarded."""
_RETRY_STATUSES: Final = frozenset({408, 425, 429})


class OutcomeKind(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    """Worth trying again later (timeouts, connection errors, 408, 425, 429, 5xx)."""
    REJECTED = "rejected"
    """Permanent: trying again will not help (other 4xx, redirects, refused URLs)."""


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """What one delivery attempt came to."""

    kind: OutcomeKind
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None
    """Seconds the receiver asked us to wait (Retry-After on a retry answer), if it did."""

    @property
    def delivered(self) -> bool:
        return self.kind is OutcomeKind.DELIVERED


def _classify(response: httpx.Response, text: str) -> WebhookOutcome:
    status = response.status_code
    if 200 <= status < 300:
        return WebhookOutcome(OutcomeKind.DELIVERED, status)
    if 300 <= status < 400:
        return WebhookOutcome(OutcomeKind.REJECTED, status, "redirect not followed")
    error = (f"receiver answered {status}: {text}" if text else f"receiver answered {status}")[:500]
    if status in _RETRY_STATUSES or 500 <= status < 600:
        return WebhookOutcome(
            OutcomeKind.RETRY, status, error, retry_after_seconds(response.headers)
        )
    return WebhookOutcome(OutcomeKind.REJECTED, status, error)


def _header_safe(name: str, value: str) -> str:
    if not value or not value.isascii() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(f"{name} must be printable ASCII, not {value!r}")
    return value


class WebhookSender:
    """Delivers signed webhook bodies, one attempt per `send`.

    A client passed in stays the caller's (the sender never closes it); with `client=None`
    the sender builds one with `build_client` and `close()` (or `async with`) closes it."""

    def __init__(
        self,
        client: httpx.AsyncClient | None,
        policy: WebhookPolicy,
        secret: bytes,
        *,
        timeout_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("a webhook signing secret must not be empty")
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        self._owns_client = client is None
        self._client = (
            client if client is not None else build_client(timeout_seconds=timeout_seconds)
        )
        self._policy = policy
        self._secret = secret
        self._timeout = timeout_seconds
        self._clock = clock

    async def close(self) -> None:
        """Close the client if the sender built it; a caller's client is left open."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def send(
        self, url: str, body: bytes, *, event_id: str, event_type: str
    ) -> WebhookOutcome:
        """POST `body` (JSON) to `url`, signed, within `timeout_seconds` in all.

        ValueError for an `event_id` or `event_type` that cannot be a header value (a bug of
        the caller's); every network or receiver problem is an outcome instead. The current
        span's W3C `traceparent` (and `tracestate`) go with it when there is one."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Accept-Encoding": "identity",
            EVENT_ID_HEADER: _header_safe("event_id", event_id),
            EVENT_TYPE_HEADER: _header_safe("event_type", event_type),
            **carrier(),  # `traceparent` of the current span (the relay's delivery span)
        }
        try:
            target = self._policy.target(url)
        except CallbackNotAllowedError as e:
            return WebhookOutcome(OutcomeKind.REJECTED, error=e.message)
        headers[SIGNATURE_HEADER] = sign(self._secret, body, timestamp=int(self._clock()))
        try:
            async with asyncio.timeout(self._timeout):
                addresses = await self._policy.checked_addresses(target.host, target.port)
                with pinned_to(target.host, target.port, addresses):
                    return await self._post(url, body, headers)
        except WebhookRefused as e:
            return WebhookOutcome(OutcomeKind.REJECTED, error=e.message)
        except (TimeoutError, httpx.TimeoutException):
            return WebhookOutcome(OutcomeKind.RETRY, error=f"no answer within {self._timeout:g} s")
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
            return WebhookOutcome(OutcomeKind.REJECTED, error=f"cannot call {url}: {e}"[:500])
        except (httpx.HTTPError, OSError) as e:
            detail = str(e) or type(e).__name__
            return WebhookOutcome(OutcomeKind.RETRY, error=f"cannot reach receiver: {detail}"[:500])

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> WebhookOutcome:
        request = self._client.build_request(
            "POST", url, content=body, headers=headers, timeout=httpx.Timeout(self._timeout)
        )
        response = await self._client.send(request, stream=True, follow_redirects=False)
        received = bytearray()
        try:
            chunks = cast(AsyncGenerator[bytes, None], response.aiter_raw())
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    received += chunk
                    if len(received) >= MAX_RESPONSE_BYTES:
                        break
        finally:
            await response.aclose()
        text = bytes(received[:MAX_RESPONSE_BYTES]).decode("utf-8", "replace").strip()
        return _classify(response, " ".join(text.split())[:300])
