"""Signing and verification of webhook deliveries, for the service and for its receivers.

Every delivery carries `X-LLM-Provider-Signature: t=<unix seconds>,v1=<hex>`, where the hex is
HMAC-SHA256 of `f"{t}.".encode() + body` under the shared secret. A header may carry several
`v1=` entries (one per secret while a secret is rotated); a receiver accepts the delivery when
any of them matches its secret and `t` is within the tolerance of its clock. Unknown keys
(`v0=`, future schemes) are ignored. Receivers verify the raw body bytes, before parsing them.

Standard library only, so a consumer can copy or import this module without the service.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from typing import Final

SIGNATURE_HEADER: Final = "X-LLM-Provider-Signature"
EVENT_ID_HEADER: Final = "X-LLM-Provider-Event-Id"
EVENT_TYPE_HEADER: Final = "X-LLM-Provider-Event-Type"

SIGNATURE_SCHEME: Final = "v1"
DEFAULT_TOLERANCE_SECONDS: Final = 300

_TIMESTAMP: Final = re.compile(r"[0-9]{1,12}")
_HEX_DIGEST: Final = re.compile(r"[0-9a-fA-F]{64}")
_MAX_HEADER_CHARS: Final = 4096


def signature(secret: bytes, body: bytes, *, timestamp: int) -> str:
    """The hex HMAC-SHA256 of `f"{timestamp}.".encode() + body` under `secret`."""
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: bytes | Sequence[bytes], body: bytes, *, timestamp: int) -> str:
    """The signature header value for `body` sent at `timestamp` (unix seconds).

    Several secrets (a sequence) give one `v1=` entry each, for rotating a secret."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError(f"timestamp must be non-negative unix seconds, not {timestamp!r}")
    secrets = [secret] if isinstance(secret, bytes | bytearray) else list(secret)
    if not secrets or any(not key for key in secrets):
        raise ValueError("a webhook signing secret must not be empty")
    entries = [f"{SIGNATURE_SCHEME}={signature(key, body, timestamp=timestamp)}" for key in secrets]
    return ",".join([f"t={timestamp}", *entries])


def parse(header: str) -> tuple[int, list[str]] | None:
    """The timestamp and the `v1` digests (lower-case hex) of a signature header, or None
    when the header is malformed: no or several `t=`, a `t` that is not unix seconds, a `v1`
    that is not 64 hex digits, no `v1` at all, or an entry that is not `key=value`."""
    if not isinstance(header, str) or len(header) > _MAX_HEADER_CHARS:
        return None
    timestamp: int | None = None
    digests: list[str] = []
    for entry in header.split(","):
        key, sep, value = entry.strip().partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            return None
        if key == "t":
            if timestamp is not None or not _TIMESTAMP.fullmatch(value):
                return None
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME:
            if not _HEX_DIGEST.fullmatch(value):
                return None
            digests.append(value.lower())
    if timestamp is None or not digests:
        return None
    return timestamp, digests


def verify(
    secret: bytes,
    header: str,
    body: bytes,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether `header` signs `body` under `secret` at a time within `tolerance_seconds` of
    `now` (default: the current time), either way. Never raises on a malformed header."""
    if tolerance_seconds < 0:
        raise ValueError("tolerance_seconds must not be negative")
    if not secret:
        return False
    parsed = parse(header)
    if parsed is None:
        return False
    timestamp, digests = parsed
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, body, timestamp=timestamp).encode("ascii")
    # Compare against every entry (no early exit) so timing says nothing about which matched.
    matches = [hmac.compare_digest(expected, digest.encode("ascii")) for digest in digests]
    return any(matches)
