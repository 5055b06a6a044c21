"""Backoff with jitter stays within its bounds and never undercuts Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common_core.client.backoff import backoff_delay, parse_retry_after


@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    base=st.floats(min_value=0.001, max_value=10.0),
    spread=st.floats(min_value=1.0, max_value=100.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_the_delay_stays_between_half_the_ceiling_and_the_ceiling(attempt, base, spread, seed):
    cap = base * spread
    ceiling = min(cap, base * 2.0 ** min(attempt, 60))

    delay = backoff_delay(attempt, base=base, cap=cap, rng=random.Random(seed))

    assert ceiling / 2 <= delay <= ceiling
    assert base / 2 <= delay <= cap


@given(
    attempt=st.integers(min_value=0, max_value=50),
    retry_after=st.floats(min_value=0.0, max_value=1_000.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_retry_after_is_a_floor_even_above_the_cap(attempt, retry_after, seed):
    delay = backoff_delay(
        attempt, base=0.1, cap=2.0, rng=random.Random(seed), retry_after=retry_after
    )

    assert delay >= retry_after
    assert delay <= max(retry_after, 2.0)


def test_the_delay_grows_then_stops_at_the_cap():
    rng = random.Random(0)
    ceilings = [
        max(backoff_delay(n, base=1.0, cap=8.0, rng=rng) for _ in range(200)) for n in range(6)
    ]

    assert ceilings[0] <= 1.0 < ceilings[1] <= 2.0 < ceilings[2] <= 4.0 < ceilings[3] <= 8.0
    assert all(c <= 8.0 for c in ceilings[3:])


def test_jitter_spreads_clients_and_a_seed_replays():
    draws = [backoff_delay(3, base=1.0, cap=30.0, rng=random.Random(seed)) for seed in range(50)]

    assert len(set(draws)) > 40
    assert backoff_delay(3, base=1.0, cap=30.0, rng=random.Random(9)) == backoff_delay(
        3, base=1.0, cap=30.0, rng=random.Random(9)
    )


@pytest.mark.parametrize(
    ("attempt", "base", "cap"),
    [(-1, 1.0, 2.0), (0, 0.0, 2.0), (0, 2.0, 1.0), (0, 1.0, float("inf"))],
)
def test_impossible_parameters_are_refused(attempt, base, cap):
    with pytest.raises(ValueError, match=r"attempt|base"):
        backoff_delay(attempt, base=base, cap=cap, rng=random.Random(0))


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    earlier = format_datetime(now - timedelta(seconds=90), usegmt=True)

    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(later, now=now) == 90.0
    assert parse_retry_after(earlier, now=now) == 0.0
    for unreadable in (None, "", "soon", "-3", "nan", "inf"):
        assert parse_retry_after(unreadable) is None
