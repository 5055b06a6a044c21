"""The `details["reason"]` values of `EventPublishError` that callers act on.

The Kafka publisher sets them; the relay and the breaker read them. Other reasons
(`timeout`, `unavailable`, `closed`) are outages: retried, and counted by the breaker.
"""

from __future__ import annotations

from typing import Final

REJECTED: Final = "rejected"
"""The broker (or the client, before sending) refused this record or topic for good: too
large, invalid topic, not authorised, policy violation, not serializable. Retrying cannot
help; the broker is up."""

UNKNOWN_TOPIC: Final = "unknown_topic"
"""The broker answered, but does not know the topic (auto-creation off). Perhaps created
soon, so worth a bounded number of attempts; the broker is up."""

CIRCUIT_OPEN: Final = "circuit_open"
"""Nothing was tried: the Kafka breaker is open."""

PERMANENT: Final = frozenset({REJECTED})
"""Reasons after which a result delivery is given up at once."""

NOT_OUTAGES: Final = frozenset({REJECTED, UNKNOWN_TOPIC})
"""Reasons that say the broker is up: not counted by the breaker, the producer kept."""
