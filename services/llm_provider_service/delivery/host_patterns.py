"""Webhook host patterns: how `WEBHOOK_ALLOWED_HOSTS` and a caller's `webhook_hosts` match a
callback host, and which patterns are too broad for a deployed service.

A pattern is an `fnmatch` pattern matched against the whole host name, case-insensitive
(`*` matches dots too: `*.example.com` allows `a.b.example.com` but not `example.com`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

_SUBDOMAIN_WILDCARD = re.compile(r"\*\.[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def normalized(patterns: Iterable[str]) -> tuple[str, ...]:
    """The patterns as hosts are spelled when matched: lower case, no trailing dot; blank
    ones dropped."""
    return tuple(p.strip().lower().rstrip(".") for p in patterns if p.strip())


def matches(host: str, patterns: Iterable[str]) -> bool:
    """Whether `host` (lower case, as `WebhookPolicy.target` spells it) matches one of the
    `normalized` patterns."""
    return any(fnmatch.fnmatchcase(host, pattern) for pattern in patterns)


def is_broad_host_pattern(pattern: str) -> bool:
    """Whether a pattern has a wildcard other than a leading `*.` before a name of at least
    two labels (`*.example.com` is fine; `*`, `*.com`, `hooks-*.x.org` are not)."""
    wild = any(char in pattern for char in "*?[")
    return wild and not _SUBDOMAIN_WILDCARD.fullmatch(pattern)
