"""`retry_after_seconds`: every form a vendor or webhook receiver may send, and nonsense."""

from __future__ import annotations

import email.utils
import time

import pytest

from services.llm_provider_service.providers.http_errors import retry_after_seconds


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, None),
        ({}, None),
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"Retry-After": "-3"}, 0.0),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),
        ({"retry-after-ms": "junk", "Retry-After": "9"}, 9.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": ""}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "Mon, 99 Foo 2026 99:99:99"}, None),
    ],
)
def test_retry_after_forms(headers: dict[str, str] | None, expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_an_http_date_counts_from_now() -> None:
    when = email.utils.formatdate(time.time() + 60, usegmt=True)
    seconds = retry_after_seconds({"Retry-After": when})
    assert seconds is not None
    assert 55 <= seconds <= 61
